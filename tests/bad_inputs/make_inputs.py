#!/usr/bin/env python3
"""Writes the small hostile files of the bad-input catalogue (tests/bad_inputs/cases.tsv)
into this folder. The files are committed; rerun this after changing it. Inputs derived
from the fixture model (missing / reshaped / extra tensors, corrupt images) are made at
test time by tests/test_bad_inputs.c instead, since they need the 10 MB fixture."""
import io
import json
import os
import struct
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'fuzz'))
import gen_seeds as g  # noqa: E402  (torch stand-ins, checkpoint and safetensors builders)


def put(name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(HERE, name), 'wb') as f:
        f.write(data)


def zip_of(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w') as z:
        for name, data in entries:
            z.writestr(g.zinfo(name), data)
    return b.getvalue()


ONE = [('sam_mask_decoder.iou_token.weight', 'FloatStorage', 8, 0, [1, 8], [8, 1])]

# ---- checkpoints (PyTorch zip) ----
put('not_a_model.txt', 'this is a text file, not a checkpoint\n')
put('legacy.pt', b'\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.')  # raw pickle: pre-1.6 torch.save
put('no_pickle.pt', zip_of([('archive/readme.txt', 'no data.pkl here\n')]))
put('foreign_global.pt', zip_of([('archive/data.pkl', b"\x80\x02cos\nsystem\nq\x00X\x08\x00\x00\x00echo pwnq\x01\x85q\x02Rq\x03.")]))
put('unknown_opcode.pt', zip_of([('archive/data.pkl', b'\x80\x02(i__main__\nEvil\nq\x00.')]))
put('storage_short.pt', g.checkpoint(ONE, short=20)[1])           # 32 bytes needed, 20 stored
missing = g.checkpoint(ONE)[1]
put('storage_missing.pt', zip_of([(n, zipfile.ZipFile(io.BytesIO(missing)).read(n))
                                  for n in zipfile.ZipFile(io.BytesIO(missing)).namelist()
                                  if not n.startswith('archive/data/')]))
crc = bytearray(g.checkpoint(ONE)[1])
at = crc.find(b'iou_token')
crc[at] ^= 0x20                                                     # data.pkl byte flipped, CRC kept
put('crc_mismatch.pt', bytes(crc))
put('long_storage.pt', g.checkpoint([('x', 'LongStorage', 2, 0, [2], [1])])[1])
put('big_endian.pt', g.checkpoint(ONE, byteorder='big')[1])
put('truncated_small.pt', g.checkpoint(ONE)[1][:300])

# ---- safetensors ----
def st_raw(header, data=b'', hlen=None):
    h = json.dumps(header, separators=(',', ':')).encode()
    return struct.pack('<Q', len(h) if hlen is None else hlen) + h + data


put('st_header_beyond.safetensors', st_raw({'a': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}},
                                           bytes(4), hlen=1 << 40))
put('st_offsets_range.safetensors', st_raw({'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]}}, bytes(4)))
put('st_overlap.safetensors', st_raw({'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                                      'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}}, bytes(12)))
put('st_unknown_dtype.safetensors', st_raw({'a': {'dtype': 'F33', 'shape': [1], 'data_offsets': [0, 4]}}, bytes(4)))
put('st_size_mismatch.safetensors', st_raw({'a': {'dtype': 'F32', 'shape': [3], 'data_offsets': [0, 8]}}, bytes(8)))
h = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]'
put('st_bad_json.safetensors', struct.pack('<Q', len(h)) + h + bytes(4))
put('st_one_tensor.safetensors', g.safetensors([('mystery.weight', 'F32', [2, 2], 4)], {'format': 'pt'}))

# ---- configs ----
put('bad_config.json', '{"model_cfg_yaml_equivalent": {"image_encoder": {"trunk": {"embed_dim": 32,,}}}\n')
put('deep_config.json', '[' * 100 + ']' * 100 + '\n')
put('absurd_config.json', json.dumps({'name': 'absurd', 'model_cfg_yaml_equivalent': {
    'image_size': 1000000000, 'image_encoder': {'trunk': {'embed_dim': 1 << 30, 'num_heads': 1,
                                                          'stages': [100000, 2, 3, 1]}}}}) + '\n')
put('config_not_object.json', '[1, 2, 3]\n')

# ---- regressions found while fuzzing / reviewing the checkpoint readers (fuzz/) ----
# storage offset near 2^63 with a 2^62 stride: the view's extent wrapped to 0
put('fuzz/torchzip_offset_wrap.pt', g.checkpoint([('w', 'FloatStorage', 4, 2 ** 63 - 1, [3], [2 ** 62])])[1])
# one element viewed with stride 0 as 2^28 elements: a 1 GiB copy from a 700-byte file
put('fuzz/torchzip_expanded_view.pt', g.checkpoint([('w', 'FloatStorage', 1, 0, [1 << 28], [0])])[1])

# ---- video prompt scripts (sam2c track --prompts) ----
def step(op, **args):
    return {'op': op, 'args': args}


def script(name, steps):
    put(name, json.dumps({'steps': steps}) + '\n')


put('script_truncated.json', '{"steps": [\n')
put('script_no_steps.json', '{"steps": "none"}\n')
put('script_deep.json', '{"steps": ' + '[' * 100 + ']' * 100 + '}\n')
script('script_unknown_op.json', [step('rm_rf')])
script('script_frame_outside.json', [step('add_new_points_or_box', frame_idx=99999, obj_id=1, points=[[5, 5]], labels=[1])])
script('script_bad_label.json', [step('add_new_points_or_box', frame_idx=0, obj_id=1, points=[[5, 5]], labels=[7])])
script('script_label_count.json', [step('add_new_points_or_box', frame_idx=0, obj_id=1, points=[[5, 5], [6, 6]], labels=[1])])
script('script_missing_mask.json', [step('add_new_mask', frame_idx=0, obj_id=1, mask='no_such_mask.png')])

# ---- COCO files (sam2c eval) ----
put('coco_gt.json', json.dumps({'images': [{'id': 1, 'height': 10, 'width': 10}], 'categories': [{'id': 1}],
                                'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 8,
                                                 'bbox': [1, 1, 4, 4], 'segmentation': [[1, 1, 5, 1, 5, 5]]}]}) + '\n')
put('coco_bad_rle.json', json.dumps([{'image_id': 1, 'category_id': 1, 'score': 1.0,
                                      'segmentation': {'size': [10, 10], 'counts': 'zzzz'}}]) + '\n')
put('coco_bad_polygon.json', json.dumps([{'image_id': 1, 'category_id': 1, 'score': 1.0,
                                          'segmentation': [[1, 1, 'x', 5, 5, 5]]}]) + '\n')
put('coco_rle_overflow.json', json.dumps([{'image_id': 1, 'category_id': 1, 'score': 1.0,
                                           'segmentation': {'size': [10, 10], 'counts': [50, 4294967295, 1]}}]) + '\n')
# two "__metadata__" objects: the second replaced the first, which leaked (fuzz_safetensors)
h = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"x":"1"},"__metadata__":{"y":"2"}}'
put('fuzz/safetensors_duplicate_metadata.safetensors', struct.pack('<Q', len(h)) + h + b'\0')
