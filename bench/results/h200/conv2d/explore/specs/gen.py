# Generates the exploration specs of this session from kernels/conv2d/conv2d_k5.toml.
import re, sys
base = open('kernels/conv2d/conv2d_k5.toml').read()
def spec(name, k, params, extra_constraints, baseline):
    s = base.replace('source = "conv2d.cu"', 'source = "../../kernels/conv2d/conv2d.cu"')
    s = s.replace('source = "reference.cpp"', 'source = "../../kernels/conv2d/reference.cpp"')
    s = s.replace('name = "conv2d_k5"', f'name = "{name}"').replace('"-DK=5"', f'"-DK={k}"').replace('\nk = 5\n', f'\nk = {k}\n')
    for p, values in params.items():
        line = f'{p} = {values}'
        s, n = re.subn(rf'^{p} = \[.*\]$', line, s, flags=re.M)
        if n == 0:
            s = s.replace('[parameters]\n', f'[parameters]\n{line}\n', 1)
    s = s.replace('constraints = [\n', 'constraints = [\n' + ''.join(f'  "{c}",\n' for c in extra_constraints), 1)
    s = re.sub(r'^baseline = .*$', 'baseline = { ' + ', '.join(f'{a} = {b}' for a, b in baseline.items()) + ' }', s, flags=re.M)
    open(f'.devrun/exp/{name}.toml', 'w').write(s)
one = dict(use_padding=[0], sliding_window=[1], cp_async=[0], halo_reuse=[0], tile_size_x=[4], bulk_copy=[0], tiles_per_block=[1, 2, 4],
           stages=[2], interleave=[0], block_size_x=[32, 64], block_size_y=[1, 2, 4], tile_size_y=[4, 8],
           read_only=[0, 1], max_registers=[0, 40, 64, 128])
b1 = dict(block_size_x=32, block_size_y=4, tile_size_x=4, tile_size_y=4, use_padding=0, read_only=0, sliding_window=1,
          tiles_per_block=1, cp_async=0, halo_reuse=0, bulk_copy=0, stages=2, interleave=0, max_registers=0)
spec('x_k5_staged', 5, one, [], b1)
t16 = dict(one, block_size_x=[32, 64], block_size_y=[1, 2, 4], tile_size_y=[8, 16], tiles_per_block=[1, 2], max_registers=[0, 40, 64, 128])
spec('x_k5_t16', 5, t16, [], dict(b1, block_size_y=2, tile_size_y=8))
spec('x_k1_staged', 1, one, [], b1)
cp = dict(one, block_size_x=[32, 64], block_size_y=[1, 2, 4], tile_size_y=[4, 8], tiles_per_block=[1, 2, 4], cp_async=[0, 1],
          max_registers=[0, 40, 64, 128], read_only=[0])
spec('x_k5_cp', 5, cp, [], dict(b1, block_size_y=2, tile_size_y=8))
mr = dict(one, block_size_x=[32, 64], block_size_y=[1, 2, 4], tile_size_y=[4, 8], tiles_per_block=[1], read_only=[0])
spec('x_k5_mr', 5, mr, [], dict(b1, block_size_y=2, tile_size_y=8))
# Run 8 (the filter passed by value): the register caps finer, 4 or 8 outputs wide, 2 to 16 rows, one or two tiles.
fixed = dict(use_padding=[0], sliding_window=[1], cp_async=[0], halo_reuse=[0], bulk_copy=[0], stages=[2], interleave=[0],
             read_only=[0])
wide = dict(fixed, block_size_x=[16, 32, 64, 128], block_size_y=[1, 2, 4, 8], tile_size_x=[4, 8], tile_size_y=[2, 4, 8, 16],
            tiles_per_block=[1, 2], max_registers=[0, 48, 64, 80, 96, 128])
spec('x_k5_wide', 5, wide, [], dict(b1, block_size_y=2, tile_size_y=8))
