#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, generated from the fixtures and sample data.

usage: gen_seeds.py OUTDIR [FIXTURES [DATA]]
Writes OUTDIR/<target>/<name> for zip, pickle, torchzip, safetensors, json, coco, rle.
(fuzz_image seeds come from gen_images.c plus the fixture images, copied by run.sh.)
Every seed is kept under 64 KiB. PyTorch checkpoints are built without torch: stand-in
classes with the module names torch.save uses make pickle emit the same opcodes.
Imported by tests/bad_inputs/make_inputs.py for its checkpoint helpers."""
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

MAX = 64 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = '.'
FX = os.path.join(HERE, '../../shared/fixtures')
DATA = os.path.join(HERE, '../../shared/data')


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX:
        return
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def read(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError:
        return None


# ---------------------------------------------------------------- torch stand-ins ----
torch = types.ModuleType('torch')
tutils = types.ModuleType('torch._utils')
sys.modules['torch'] = torch
sys.modules['torch._utils'] = tutils


def _rebuild_tensor_v2(*args):
    return args


def _rebuild_parameter(*args):
    return args


for fn in (_rebuild_tensor_v2, _rebuild_parameter):
    fn.__module__ = 'torch._utils'
    setattr(tutils, fn.__name__, fn)
STORAGES = {}
for nm in ('FloatStorage', 'HalfStorage', 'BFloat16Storage', 'LongStorage'):
    cls = type(nm, (), {})
    cls.__module__ = 'torch'
    setattr(torch, nm, cls)
    STORAGES[nm] = cls


class Storage:
    def __init__(self, key, kind, numel):
        self.key, self.kind, self.numel = key, kind, numel


class Tensor:
    def __init__(self, storage, offset, size, stride, param=False):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
        self.param = param

    def __reduce_ex__(self, proto):
        t = (_rebuild_tensor_v2, self.args)
        if self.param:
            return (_rebuild_parameter, (Rebuilt(t), False, collections.OrderedDict()))
        return t


class Rebuilt:
    def __init__(self, t):
        self.t = t

    def __reduce_ex__(self, proto):
        return self.t


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ('storage', STORAGES[obj.kind], obj.key, 'cpu', obj.numel)
        return None


def dumps(obj):
    b = io.BytesIO()
    TorchPickler(b, protocol=2).dump(obj)
    return b.getvalue()


def zinfo(name, method=zipfile.ZIP_STORED):
    """Entry with a fixed date, so generated archives are byte-identical run to run."""
    i = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    i.compress_type = method
    return i


ESIZE = {'FloatStorage': 4, 'HalfStorage': 2, 'BFloat16Storage': 2, 'LongStorage': 8}


def checkpoint(tensors, folder='archive', deflate=False, zip64=False, wrap=True, byteorder='little',
               short=None):
    """tensors: list of (name, kind, numel, offset, size, stride[, param])."""
    sd = collections.OrderedDict()
    blobs = {}
    for i, t in enumerate(tensors):
        name, kind, numel, off, size, stride = t[:6]
        st = Storage(str(i), kind, numel)
        sd[name] = Tensor(st, off, size, stride, param=len(t) > 6 and t[6])
        blobs[str(i)] = bytes((j * 37 + i) & 255 for j in range(numel * ESIZE[kind]))
    pkl = dumps({'model': sd} if wrap else sd)
    b = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(b, 'w', method) as z:
        z.writestr(zinfo(f'{folder}/data.pkl', method), pkl)
        z.writestr(zinfo(f'{folder}/byteorder', method), byteorder)
        for k, v in blobs.items():
            with z.open(zinfo(f'{folder}/data/{k}', method), 'w', force_zip64=zip64) as f:
                f.write(v[:short] if short is not None else v)
        z.writestr(zinfo(f'{folder}/version', method), '3\n')
    return pkl, b.getvalue()


def torch_seeds():
    small = [('image_encoder.trunk.pos_embed', 'FloatStorage', 24, 0, [1, 2, 3, 4], [24, 12, 4, 1]),
             ('sam_mask_decoder.iou_token.weight', 'FloatStorage', 8, 0, [1, 8], [8, 1]),
             ('memory_encoder.bias', 'HalfStorage', 6, 0, [6], [1])]
    strided = [('w.t', 'FloatStorage', 12, 0, [4, 3], [1, 4]),          # transposed view
               ('w.off', 'FloatStorage', 10, 3, [7], [1]),              # storage offset
               ('w.bf16', 'BFloat16Storage', 4, 0, [2, 2], [2, 1]),
               ('w.scalar', 'FloatStorage', 1, 0, [], []),
               ('w.empty', 'FloatStorage', 0, 0, [0, 5], [5, 1]),
               ('w.param', 'FloatStorage', 4, 0, [4], [1], True)]
    shared = [('a', 'FloatStorage', 16, 0, [4, 4], [4, 1]), ('b', 'FloatStorage', 16, 4, [2, 2], [4, 1])]
    cases = {'small': (small, {}), 'strided': (strided, {}), 'deflate': (small, {'deflate': True}),
             'zip64': (strided, {'zip64': True}), 'bare': (small, {'wrap': False, 'folder': 'model'}),
             'long': ([('x.long', 'LongStorage', 2, 0, [2], [1])], {})}
    for name, (ts, kw) in cases.items():
        pkl, z = checkpoint(ts, **kw)
        put('pickle', f'{name}.pkl', pkl)
        put('torchzip', f'{name}.pt', z)
        put('zip', f'{name}.zip', z)
    # two tensors on one storage (views of the same key)
    sd = collections.OrderedDict()
    st = Storage('0', 'FloatStorage', 16)
    for name, _, _, off, size, stride in shared:
        sd[name] = Tensor(st, off, size, stride)
    pkl = dumps({'model': sd})
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w') as z:
        z.writestr(zinfo('ckpt/data.pkl'), pkl)
        z.writestr(zinfo('ckpt/data/0'), bytes(64))
    put('pickle', 'shared.pkl', pkl)
    put('torchzip', 'shared.pt', b.getvalue())
    # plain data pickles with every opcode the reader knows
    put('pickle', 'plain2.pkl', pickle.dumps({'a': [1, -2, 300, 70000, 2 ** 40, -2 ** 63, 1.5, None, True,
                                                   False, 'x' * 300, (1,), (1, 2), (1, 2, 3), ()]}, protocol=2))
    put('pickle', 'plain4.pkl', pickle.dumps([{'k': (i, str(i))} for i in range(20)], protocol=4))
    put('pickle', 'plain5.pkl', pickle.dumps({'n': [0.5] * 3, 'o': collections.OrderedDict(a=1)}, protocol=5))
    put('pickle', 'os_system.pkl', b'cos\nsystem\n(S\'echo hi\'\ntR.')
    # the real checkpoint's pickle, and a zip with a comment, and the empty zip
    z = read(os.path.join(FX, 'micro/model.pt'))
    if z:
        with zipfile.ZipFile(io.BytesIO(z)) as zz:
            put('pickle', 'micro_data.pkl', zz.read('model/data.pkl'))
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as zz:
        zz.writestr(zinfo('a.txt', zipfile.ZIP_DEFLATED), 'hello ' * 50)
        zz.writestr(zinfo('dir/'), '')
        zz.comment = b'comment'
    put('zip', 'comment.zip', b.getvalue())
    put('zip', 'empty.zip', b'PK\x05\x06' + bytes(18))


# ---------------------------------------------------------------- safetensors ----
def safetensors(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, esize)."""
    hdr, data = {}, b''
    for name, dt, shape, es in tensors:
        n = es
        for s in shape:
            n *= s
        hdr[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(data), len(data) + n]}
        data += bytes((i * 11) & 255 for i in range(n))
    if meta is not None:
        hdr['__metadata__'] = meta
    h = json.dumps(hdr, separators=(',', ':')).encode()
    if pad:
        h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


def safetensors_seeds():
    cfg = read(os.path.join(FX, 'micro/config.json'))
    cfg_txt = json.dumps(json.loads(cfg), separators=(',', ':')) if cfg else '{}'
    put('safetensors', 'dtypes.safetensors', safetensors([
        ('f32', 'F32', [2, 3], 4), ('f16', 'F16', [3], 2), ('bf16', 'BF16', [2, 1], 2), ('f64', 'F64', [1], 8),
        ('i64', 'I64', [2], 8), ('i32', 'I32', [1], 4), ('u8', 'U8', [5], 1), ('bool', 'BOOL', [3], 1),
        ('scalar', 'F32', [], 4), ('empty', 'F32', [0, 4], 4)], {'format': 'pt'}))
    put('safetensors', 'config_meta.safetensors', safetensors(
        [('sam_mask_decoder.iou_token.weight', 'F32', [1, 8], 4)],
        {'sam2c_config': cfg_txt, 'format': 'pt', 'source': 'sam2c convert'}))
    put('safetensors', 'unpadded.safetensors', safetensors([('a', 'F32', [1], 4), ('b', 'U8', [3], 1)], pad=False))
    put('safetensors', 'no_tensors.safetensors', safetensors([], {}))
    # the real header of the fixture model (data area cut off: fails the range checks)
    st = read(os.path.join(FX, 'micro/model.safetensors'))
    if st:
        n = struct.unpack('<Q', st[:8])[0]
        put('safetensors', 'micro_header.safetensors', st[:8 + n])
        put('json', 'micro_safetensors_header.json', st[8:8 + n])
    for p in ('micro/image/constants.safetensors', 'train/inputs.safetensors'):
        st = read(os.path.join(FX, p))
        if st:
            n = struct.unpack('<Q', st[:8])[0]
            put('json', os.path.basename(p) + '.header.json', st[8:8 + n])


# ---------------------------------------------------------------- JSON, COCO, RLE ----
def json_seeds():
    for rel in ('micro/config.json', 'micro/generation_info.json', 'micro/image/index.json',
                'micro/image/preprocess_full.json', 'micro/image/truck/cases.json', 'tolerances.json',
                'train/train.json', 'amg/amg.json', 'manifest/sam2.1_hiera_t.json'):
        b = read(os.path.join(FX, rel))
        if b:
            put('json', rel.replace('/', '_'), b)
    put('json', 'escapes.json', '{"s":"a\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/","n":[-0,0.5e-3,1E+2,-12.25],"t":[true,false,null],"e":{}}')
    put('json', 'bom.json', b'\xef\xbb\xbf[1]')
    put('json', 'utf8.json', '["\u00e9\u4e2d\U0001f600"]')


def coco_seeds():
    sav = read(os.path.join(DATA, 'sav/sav_000001_manual.json'))
    strings = []
    if sav:
        d = json.loads(sav)
        for frame in d['masklet'][:3]:
            for m in frame[:2]:
                if len(m['counts']) < 2000:
                    strings.append(m)
    ds = {'images': [{'id': 1, 'height': 48, 'width': 64, 'file_name': 'a.jpg'},
                     {'id': 2, 'height': 848, 'width': 480}],
          'categories': [{'id': 1, 'name': 'thing'}],
          'annotations': [
              {'id': 1, 'image_id': 1, 'category_id': 1, 'iscrowd': 0,
               'segmentation': [[10, 10, 30, 12, 25, 40, 8, 30], [40, 5, 60, 5, 60, 20]]},
              {'id': 2, 'image_id': 1, 'category_id': 1, 'segmentation': [[5, 5, 20, 10]]},
              {'id': 3, 'image_id': 1, 'category_id': 1, 'iscrowd': 1,
               'segmentation': {'size': [48, 64], 'counts': [100, 20, 500, 30, 2422]}},
              {'id': 4, 'image_id': 1, 'category_id': 1,
               'segmentation': {'size': [48, 64], 'counts': '0`0:R1'}},
              {'id': 5, 'image_id': 1, 'category_id': 1, 'segmentation': [[-5.5, 2.25, 70, 3, 33, 60.75]]}]}
    for i, m in enumerate(strings[:4]):
        ds['annotations'].append({'id': 10 + i, 'image_id': 2, 'category_id': 1, 'segmentation': m})
    put('coco', 'dataset.json', json.dumps(ds))
    res = [{'image_id': 1, 'category_id': 1, 'score': 0.9, 'segmentation': a['segmentation']}
           for a in ds['annotations']]
    put('coco', 'results.json', json.dumps(res))
    amg = read(os.path.join(FX, 'amg/masks.json'))
    if amg:
        put('coco', 'amg_masks.json', amg[:MAX] if len(amg) <= MAX else json.dumps(json.loads(amg)[:3]))
    # rle target: mode, h, w (LE 16-bit), payload
    for i, m in enumerate(strings[:4]):
        h, w = m['size']
        if h < 2048 and w < 2048:
            put('rle', f'sav{i}.bin', bytes([0]) + struct.pack('<HH', h, w) + m['counts'].encode())
    put('rle', 'str_small.bin', bytes([0]) + struct.pack('<HH', 48, 64) + b'0`0:R1')
    poly = [10, 10, 30, 12, 25, 40, 8, 30]
    put('rle', 'poly16.bin', bytes([1]) + struct.pack('<HH', 48, 64) + struct.pack('<8h', *[4 * v for v in poly]))
    put('rle', 'polyf64.bin', bytes([2]) + struct.pack('<HH', 48, 64) + struct.pack('<8d', *poly))
    put('rle', 'counts.bin', bytes([3]) + struct.pack('<HH', 48, 64) + struct.pack('<5I', 100, 20, 500, 30, 2422))


if __name__ == '__main__':
    OUT = sys.argv[1]
    if len(sys.argv) > 2:
        FX = sys.argv[2]
    if len(sys.argv) > 3:
        DATA = sys.argv[3]
    torch_seeds()
    safetensors_seeds()
    json_seeds()
    coco_seeds()
