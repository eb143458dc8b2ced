// image_segmentation: 8-connected component labelling of a thresholded
// image, in one launch. For an H x W uint8 image and a threshold t the
// foreground is {v > t}; labels[y W + x] is 0 on the background and, on the
// foreground, 1 + the smallest linear index y W + x among the pixels of the
// pixel's 8-connected component; count[0] is the number of components.
//
// Bytes (the floor): H W (image read) + 4 H W (labels written) + 4 (count).
// What this kernel moves: the image once (plus a halo row and column per
// tile), the labels written in phase A, read and, where they change,
// rewritten in phase C; the union-find walks hit L2. No FLOPs to speak of:
// the time goes to memory and to the latency of dependent loads.
//
// The labels array is the union-find forest: an entry is its parent's index
// + 1 (0 on the background), a parent is always a smaller index than its
// child, so every root is its tree's minimum and the final label of a pixel
// is exactly root + 1 -- the forest in its compressed form is the output.
//
// One launch, no co-residency assumed. The image is cut into tiles of
// tile_size_x x tile_size_y pixels, numbered in row-major order; a block
// takes tiles by ticket (atomicAdd on a counter, the next ticket taken while
// the current tile is worked on), so the tiles are taken in row-major order,
// each by a block that is running:
//   A  label the tile in shared memory: each pixel starts pointing at the
//      first pixel of its horizontal run within its 4-pixel group, then
//      union-find with atomicMin on local indices (minimum roots) joins the
//      remaining neighbour pairs; flatten; write every pixel's entry (its
//      tile-local root as a global index + 1) to labels; load the halo (the
//      row above, the column to the left, as foreground bits) into shared
//      memory; raise the tile's done flag (thread 0: fence, release store);
//   B  wait for the done flags of the left, up-left, up and up-right tiles
//      (all taken earlier, by running blocks whose phase A never waits, so
//      the wait ends) and join the tile's top row and left column to them:
//      one work item per (border pixel, direction), each at most one union
//      of the lock-free union-find on the global labels -- walk both nodes
//      to their roots in lockstep, atomicMin the larger root's entry down to
//      the smaller root; if the old value shows it was no longer a root,
//      retry with what it had been linked to (the link atomicMin may have
//      replaced is re-made by that retry). compress = 1 halves the paths on
//      the way (atomicMin of a node to its grandparent). The right and lower
//      borders are the later tiles' own left/upper borders. Count the tile
//      in `merged`.
// A block takes tickets until none are left, then waits until `merged`
// counts every tile (every tile was taken by a running block whose phase B
// waits only on earlier tiles, so this ends), and takes tiles again by a
// second ticket:
//   C  every pixel's root: the tile's pixels read their entries, the distinct
//      in-tile parents are resolved once each (walking the now static forest),
//      every pixel gets root + 1, roots (entry == own index + 1) are counted,
//      and the tile's done flag is cleared (no one reads flags any more).
// The last block out (a ticket on `exits`) writes count[0] and zeroes the
// counters: scratch is an inout buffer of zeros that the kernel leaves
// zeroed for the next launch.
//
// Neighbour pairs left out are joined through pairs that are not: in a tile
// and across its borders, a vertical pair whose left neighbours are a
// foreground vertical pair too (through that pair and the two horizontal
// pairs), a diagonal pair beside a foreground horizontal or vertical
// neighbour; horizontal pairs are always joined.
//
// Memory ordering: the block synchronises, then thread 0 fences and raises a
// flag or a counter with a release store / atomic; a waiting thread spins
// with relaxed loads, fences once, and the block synchronises. Every read of
// a label another block may write is a relaxed gpu-scope load (served by L2,
// never a stale L1 line); the links are atomics. A walk only reaches pixels
// whose tile raised its flag before the link to them was made, and each
// step's address depends on the last load.
//
// Tunable (each a -D define):
//   tile_size_x, tile_size_y  the tile in pixels (tile_size_x a multiple of 4)
//   block_size_x              threads of a block; a thread owns groups of 4
//                             consecutive pixels of a row (one 32-bit image
//                             load, one 16-byte label store)
//   blocks_per_sm             blocks an SM should hold (the grid is SMs *
//                             blocks_per_sm, at most the tiles); also the
//                             launch bound that caps registers
//   compress                  path halving in phase B's walks (0 or 1)
// Compiled by NVRTC: builtins only, no headers.

#ifndef tile_size_x
#define tile_size_x 64
#endif
#ifndef tile_size_y
#define tile_size_y 16
#endif
#ifndef block_size_x
#define block_size_x 256
#endif
#ifndef blocks_per_sm
#define blocks_per_sm 4
#endif
#ifndef compress
#define compress 1
#endif

namespace {

constexpr int kTileW = tile_size_x;
constexpr int kTileH = tile_size_y;
constexpr int kPixels = kTileW * kTileH;
constexpr int kGroupsPerRow = kTileW / 4;
constexpr int kGroups = kPixels / 4;
constexpr int kGroupsPerThread = kGroups / block_size_x;
constexpr int kBorder = kTileW + kTileH;  // top row, then left column
static_assert(kTileW % 4 == 0, "tile_size_x is a multiple of 4");
static_assert(kGroups % block_size_x == 0, "a tile is a whole number of 4-pixel groups per thread");

// Where this thread's group k (of kGroupsPerThread) lies in the tile: row ly,
// first column lx (a multiple of 4).
struct group_place {
  int ly, lx;
};
__device__ __forceinline__ group_place place_of_group(int k) {
  const int g = static_cast<int>(threadIdx.x) + k * block_size_x;
  return {g / kGroupsPerRow, (g % kGroupsPerRow) * 4};
}

// scratch (int32, zeros on entry and on exit): counters on their own 128-byte
// lines, then one done flag per tile.
constexpr int kTicketsA = 0;
constexpr int kTicketsC = 32;
constexpr int kMerged = 64;
constexpr int kExits = 96;
constexpr int kRoots = 128;
constexpr int kFlags = 256;

// Thread 0 hands every thread of the block the ticket it took ahead (in
// `shared_ticket`) and takes the next one from `counter`, none past `tiles`.
__device__ __forceinline__ int take_ticket(int* counter, int& next, int tiles, int& shared_ticket) {
  if (threadIdx.x == 0) {
    shared_ticket = next;
    if (next < tiles) next = atomicAdd(counter, 1);
  }
  __syncthreads();
  const int ticket = shared_ticket;
  __syncthreads();
  return ticket;
}

__device__ __forceinline__ int load_relaxed(const int* p) {
  int v;
  asm volatile("ld.relaxed.gpu.s32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void store_release(int* p, int v) {
  asm volatile("st.release.gpu.s32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void acquire_fence() { asm volatile("fence.acq_rel.gpu;" ::: "memory"); }
// Four labels of the block's own tile, from L2 (no stale L1 line).
__device__ __forceinline__ int4 load_l2_4(const int* p) {
  int4 v;
  asm volatile(
      "{\n\t.reg .u64 address;\n\tcvta.to.global.u64 address, %4;\n\t"
      "ld.global.cg.v4.s32 {%0, %1, %2, %3}, [address];\n\t}"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p)
      : "memory");
  return v;
}
__device__ __forceinline__ unsigned image_word(const unsigned char* p) {
  return __ldg(reinterpret_cast<const unsigned int*>(p));
}
__device__ __forceinline__ int image_byte(const unsigned char* p) { return __ldg(p); }
__device__ __forceinline__ void pause_briefly() { asm volatile("nanosleep.u32 64;" ::: "memory"); }

// --- shared-memory union-find over the tile's local indices ---------------

__device__ __forceinline__ int local_find(volatile int* lab, int x) {
  int p = lab[x];
  while (p != x) {
    x = p;
    p = lab[x];
  }
  return x;
}

__device__ __forceinline__ void local_union(volatile int* lab, int a, int b) {
  for (;;) {
    a = local_find(lab, a);
    b = local_find(lab, b);
    if (a == b) return;
    if (a > b) {
      const int t = a;
      a = b;
      b = t;
    }
    const int old = atomicMin(const_cast<int*>(lab) + b, a);
    if (old == b) return;
    b = old;  // b was linked meanwhile: join a with what it was linked to
  }
}

// --- global union-find over labels (entries are parent + 1) ---------------

// Joins the trees of a and b: both walked to their roots in lockstep (two
// independent loads a step), the larger root linked under the smaller.
__device__ __forceinline__ void global_union(int* labels, int a, int b) {
  for (;;) {
    int pa = load_relaxed(labels + a) - 1;
    int pb = load_relaxed(labels + b) - 1;
    while (pa != a || pb != b) {
      const int na = pa;
      const int nb = pb;
      pa = load_relaxed(labels + na) - 1;
      pb = load_relaxed(labels + nb) - 1;
#if compress
      if (pa != na) atomicMin(labels + a, pa + 1);  // a to its grandparent
      if (pb != nb) atomicMin(labels + b, pb + 1);
#endif
      a = na;
      b = nb;
    }
    if (a == b) return;
    if (a > b) {
      const int t = a;
      a = b;
      b = t;
    }
    const int old = atomicMin(labels + b, a + 1) - 1;
    if (old == b) return;
    b = old;
  }
}

// The root of x in a forest that only gets shorter paths (phase C).
__device__ __forceinline__ int static_find(const int* labels, int x, int parent) {
  while (parent != x) {
    x = parent;
    parent = load_relaxed(labels + x) - 1;
  }
  return x;
}

// Phase A: the tile's pixels to their tile-local roots, in lab (shared) and
// in labels (global, as the root's global index + 1; 0 on the background);
// the halo's foreground bits: top[i] for (x0 - 1 + i, y0 - 1), i < kTileW + 2,
// left[j] for (x0 - 1, y0 + j), and right for (x0 + kTileW, y0).
__device__ void label_tile(int* labels, const unsigned char* image, int width, int height, int threshold, int x0,
                           int y0, bool whole_words, volatile int* lab, volatile unsigned char* top,
                           volatile unsigned char* left, volatile unsigned char* right) {
  unsigned fg[kGroupsPerThread];  // 4 bits a group
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k) {
    const auto [ly, lx] = place_of_group(k);
    const int x = x0 + lx;
    const int y = y0 + ly;
    unsigned bits = 0;
    if (y < height) {
      const unsigned char* row = image + static_cast<long long>(y) * width;
      if (whole_words && x + 3 < width) {
        const unsigned word = image_word(row + x);
#pragma unroll
        for (int j = 0; j < 4; ++j) bits |= static_cast<unsigned>(static_cast<int>((word >> (8 * j)) & 0xffu) > threshold) << j;
      } else {
        for (int j = 0; j < 4; ++j)
          if (x + j < width) bits |= static_cast<unsigned>(image_byte(row + x + j) > threshold) << j;
      }
    }
    fg[k] = bits;
    // Each pixel points at the first pixel of its run within the group.
    const int li = ly * kTileW + lx;
    int start = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (j == 0 || !((bits >> (j - 1)) & 1u)) start = j;
      lab[li + j] = (bits >> j) & 1u ? li + start : -1;
    }
  }
  // The halo, for phase B (read after the block's next synchronisation).
  for (int i = threadIdx.x; i < kTileW + 2 + kTileH + 1; i += block_size_x) {
    int x, y;
    if (i < kTileW + 2) {
      x = x0 - 1 + i;
      y = y0 - 1;
    } else if (i < kTileW + 2 + kTileH) {
      x = x0 - 1;
      y = y0 + i - (kTileW + 2);
    } else {
      x = x0 + kTileW;
      y = y0;
    }
    const bool inside = x >= 0 && x < width && y >= 0 && y < height;
    const unsigned char bit = inside && image_byte(image + static_cast<long long>(y) * width + x) > threshold;
    if (i < kTileW + 2) top[i] = bit;
    else if (i < kTileW + 2 + kTileH) left[i - (kTileW + 2)] = bit;
    else *right = bit;
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k) {
    const auto [ly, lx0] = place_of_group(k);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (!((fg[k] >> j) & 1u)) continue;
      const int lx = lx0 + j;
      const int li = ly * kTileW + lx;
      const bool has_left = lx > 0 && lab[li - 1] >= 0;
      // Within the group a foreground left neighbour is the same run already.
      if (j == 0 && has_left) local_union(lab, li, li - 1);
      if (ly == 0) continue;
      if (lab[li - kTileW] >= 0) {
        if (!(has_left && lab[li - kTileW - 1] >= 0)) local_union(lab, li, li - kTileW);
      } else {
        if (lx > 0 && !has_left && lab[li - kTileW - 1] >= 0) local_union(lab, li, li - kTileW - 1);
        if (lx + 1 < kTileW && lab[li - kTileW + 1] >= 0 && lab[li + 1] < 0) local_union(lab, li, li - kTileW + 1);
      }
    }
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k) {
    const auto [ly, lx] = place_of_group(k);
    const int x = x0 + lx;
    const int y = y0 + ly;
    const int li = ly * kTileW + lx;
    int out[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      out[j] = 0;
      if ((fg[k] >> j) & 1u) {
        const int r = local_find(lab, li + j);
        lab[li + j] = r;
        out[j] = (y0 + r / kTileW) * width + x0 + r % kTileW + 1;
      }
    }
    if (y < height) {
      int* row = labels + static_cast<long long>(y) * width;
      if (whole_words && x + 3 < width) {
        *reinterpret_cast<int4*>(row + x) = make_int4(out[0], out[1], out[2], out[3]);
      } else {
        for (int j = 0; j < 4; ++j)
          if (x + j < width) row[x + j] = out[j];
      }
    }
  }
  __syncthreads();
}

// Phase B: join the tile's top row and left column to the tiles above and to
// the left; item k: border pixel k % kBorder, direction k / kBorder (0 the
// straight neighbour, 1 the diagonal before it, 2 the diagonal after it).
__device__ void merge_borders(int* labels, int width, int height, int x0, int y0, const volatile int* lab,
                              const volatile unsigned char* top, const volatile unsigned char* left,
                              const volatile unsigned char* right) {
  for (int item = threadIdx.x; item < 3 * kBorder; item += block_size_x) {
    const int k = item % kBorder;
    const int direction = item / kBorder;
    int target = -1;
    int li;
    if (k < kTileW) {  // top row pixel (x0 + k, y0) against row y0 - 1: top[k + 1] is straight above
      li = k;
      if (y0 == 0 || x0 + k >= width || lab[li] < 0) continue;
      const int above = (y0 - 1) * width + x0 + k;
      const bool up = top[k + 1];
      const bool before = k > 0 ? lab[li - 1] >= 0 : left[0];
      if (direction == 0) {
        if (up && !(k > 0 && before && top[k])) target = above;
      } else if (direction == 1) {
        if (!up && top[k] && !before) target = above - 1;
      } else {
        const bool after = k + 1 < kTileW ? lab[li + 1] >= 0 : *right;
        if (!up && top[k + 2] && !after) target = above + 1;
      }
    } else {  // left column pixel (x0, y0 + j) against column x0 - 1
      const int j = k - kTileW;
      li = j * kTileW;
      if (x0 == 0 || y0 + j >= height || lab[li] < 0) continue;
      const int beside = (y0 + j) * width + x0 - 1;
      const bool straight = left[j];
      if (direction == 0) {
        if (straight && !(j > 0 && lab[li - kTileW] >= 0 && left[j - 1])) target = beside;
      } else if (direction == 1) {
        // Up-left of the top row's first pixel is the top row's item.
        if (!straight && j > 0 && lab[li - kTileW] < 0 && left[j - 1]) target = beside - width;
      } else {
        // Down-left of the last row's pixel is the down-left tile's (its up-right).
        if (!straight && j + 1 < kTileH && lab[li + kTileW] < 0 && left[j + 1]) target = beside + width;
      }
    }
    if (target < 0) continue;
    const int root = lab[li];
    global_union(labels, (y0 + root / kTileW) * width + x0 + root % kTileW, target);
  }
}

// Phase C: every pixel of the tile to root + 1; returns this thread's roots.
__device__ int resolve_tile(int* labels, int width, int height, int x0, int y0, bool whole_words, volatile int* lab) {
  int entry[kGroupsPerThread][4];
  int local_parent[kGroupsPerThread][4];  // the parent's local index, -1 outside the tile
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k) {
    const auto [ly, lx] = place_of_group(k);
    const int x = x0 + lx;
    const int y = y0 + ly;
    const int li = ly * kTileW + lx;
#pragma unroll
    for (int j = 0; j < 4; ++j) entry[k][j] = 0;
    if (y < height) {
      const int* row = labels + static_cast<long long>(y) * width;
      if (whole_words && x + 3 < width) {
        const int4 v = load_l2_4(row + x);
        entry[k][0] = v.x;
        entry[k][1] = v.y;
        entry[k][2] = v.z;
        entry[k][3] = v.w;
      } else {
        for (int j = 0; j < 4; ++j)
          if (x + j < width) entry[k][j] = load_relaxed(row + x + j);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) lab[li + j] = -1;
  }
  __syncthreads();
  // Mark the in-tile parents.
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      local_parent[k][j] = -1;
      if (entry[k][j] == 0) continue;
      const unsigned parent = static_cast<unsigned>(entry[k][j] - 1);
      const unsigned py = parent / static_cast<unsigned>(width);
      const unsigned px = parent - py * static_cast<unsigned>(width);
      if (py - static_cast<unsigned>(y0) < static_cast<unsigned>(kTileH) &&
          px - static_cast<unsigned>(x0) < static_cast<unsigned>(kTileW)) {
        local_parent[k][j] = static_cast<int>((py - y0) * kTileW + (px - x0));
        lab[local_parent[k][j]] = -2;
      }
    }
  __syncthreads();
  // Resolve each marked pixel once.
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k) {
    const auto [ly, lx] = place_of_group(k);
    const int li = ly * kTileW + lx;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (lab[li + j] == -2) {
        const int i = (y0 + ly) * width + x0 + lx + j;
        lab[li + j] = static_find(labels, i, entry[k][j] - 1);
      }
  }
  __syncthreads();
  int roots = 0;
#pragma unroll
  for (int k = 0; k < kGroupsPerThread; ++k) {
    const auto [ly, lx] = place_of_group(k);
    const int x = x0 + lx;
    const int y = y0 + ly;
    int out[4];
    bool changed = false;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      out[j] = entry[k][j];
      if (entry[k][j] == 0) continue;
      const int i = y * width + x + j;
      const int r = local_parent[k][j] >= 0 ? lab[local_parent[k][j]] : static_find(labels, i, entry[k][j] - 1);
      roots += r == i;
      out[j] = r + 1;
      changed |= out[j] != entry[k][j];
    }
    if (changed) {
      int* row = labels + static_cast<long long>(y) * width;
      if (whole_words && x + 3 < width) {
        *reinterpret_cast<int4*>(row + x) = make_int4(out[0], out[1], out[2], out[3]);
      } else {
        for (int j = 0; j < 4; ++j)
          if (x + j < width) row[x + j] = out[j];
      }
    }
  }
  __syncthreads();  // lab is reused by the next tile
  return roots;
}

}  // namespace

extern "C" __global__ void __launch_bounds__(block_size_x, blocks_per_sm)
    image_segmentation(int* labels, int* count, const unsigned char* image, int* scratch, int width, int height,
                       int threshold) {
  __shared__ int tile_labels[kPixels];
  __shared__ unsigned char halo[kTileW + 2 + kTileH + 1];
  __shared__ int ticket;
  __shared__ int block_roots;
  volatile int* lab = tile_labels;
  volatile unsigned char* top = halo;
  volatile unsigned char* left = halo + kTileW + 2;
  volatile unsigned char* right = halo + kTileW + 2 + kTileH;
  const int tiles_x = (width + kTileW - 1) / kTileW;
  const int tiles = tiles_x * ((height + kTileH - 1) / kTileH);
  const bool whole_words = width % 4 == 0;
  int* flags = scratch + kFlags;

  int next = 0;  // thread 0: the ticket taken ahead
  if (threadIdx.x == 0) {
    block_roots = 0;
    next = atomicAdd(scratch + kTicketsA, 1);
  }
  for (;;) {
    const int t = take_ticket(scratch + kTicketsA, next, tiles, ticket);
    if (t >= tiles) break;
    const int tx = t % tiles_x;
    const int ty = t / tiles_x;
    const int x0 = tx * kTileW;
    const int y0 = ty * kTileH;
    label_tile(labels, image, width, height, threshold, x0, y0, whole_words, lab, top, left, right);
    if (threadIdx.x == 0) {
      __threadfence();
      store_release(flags + t, 1);
    }
    if (threadIdx.x < 4) {
      int neighbour = -1;
      if (threadIdx.x == 0 && tx > 0) neighbour = t - 1;
      if (threadIdx.x == 1 && ty > 0) neighbour = t - tiles_x;
      if (threadIdx.x == 2 && ty > 0 && tx > 0) neighbour = t - tiles_x - 1;
      if (threadIdx.x == 3 && ty > 0 && tx + 1 < tiles_x) neighbour = t - tiles_x + 1;
      if (neighbour >= 0) {
        while (load_relaxed(flags + neighbour) == 0) pause_briefly();
        acquire_fence();
      }
    }
    __syncthreads();
    merge_borders(labels, width, height, x0, y0, lab, top, left, right);
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(scratch + kMerged, 1);
    }
  }

  if (threadIdx.x == 0) {
    while (load_relaxed(scratch + kMerged) < tiles) pause_briefly();
    acquire_fence();
    next = atomicAdd(scratch + kTicketsC, 1);
  }
  __syncthreads();

  int roots = 0;
  for (;;) {
    const int t = take_ticket(scratch + kTicketsC, next, tiles, ticket);
    if (t >= tiles) break;
    roots += resolve_tile(labels, width, height, (t % tiles_x) * kTileW, (t / tiles_x) * kTileH, whole_words, lab);
    if (threadIdx.x == 0) flags[t] = 0;
  }

  if (roots != 0) atomicAdd(&block_roots, roots);
  __syncthreads();
  if (threadIdx.x == 0) {
    if (block_roots != 0) atomicAdd(scratch + kRoots, block_roots);
    __threadfence();
    if (atomicAdd(scratch + kExits, 1) == static_cast<int>(gridDim.x) - 1) {
      // Every other block has left: the counters are this block's to reset.
      __threadfence();
      count[0] = atomicExch(scratch + kRoots, 0);
      atomicExch(scratch + kTicketsA, 0);
      atomicExch(scratch + kTicketsC, 0);
      atomicExch(scratch + kMerged, 0);
      atomicExch(scratch + kExits, 0);
    }
  }
}
