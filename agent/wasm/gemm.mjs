/**
 * Generates the kernels of the engine and the trainer as WebAssembly text (float64, f64x2 SIMD; byte
 * addresses, strides in elements). Each has a JavaScript twin, the reference and the fallback:
 *
 * - gemm(out, oStride, a, aStride, rows, w, wStride, cols, depth) adds Σ_k a[r][k]·w[o][k] to
 *   out[r][o], two k at a time (an odd last k as (a_k, 0)·(w_k, 0)), the two lanes summed at the
 *   end (model/gemm.ts jsGemm). Blocks of 2 rows × 4 outputs share loads; the edges use 2×1, 1×4
 *   and 1×1 blocks of the same code.
 * - cell(z, cPrev, c, h, n): the LSTM cell of n units, two units at a time, with the same operations
 *   in the same order as model/fast-lstm.ts lstmCell, so the same bits.
 * - cellBack(z, c, cPrev, dh, dOut, dc, n): its backward step (train/fast-network.ts lstmCellBack),
 *   the same operations in the same order.
 * - transpose(out, a, rows, cols): out[c][r] = a[r][c], 2 × 2 blocks.
 *
 * `tanh` holds the coefficients of model/fast-lstm.ts fastTanh ({ p: [7], q: [4] }): the build reads
 * them from the compiled module, so the rational function exists in one place.
 */

/** One R×C micro-kernel over the whole depth, at rows r (local $r) and outputs o (local $o). */
function block(R, C) {
  const acc = [];
  for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) acc.push(`$acc${i}${j}`);
  const lines = [];
  for (const a of acc) lines.push(`(local.set ${a} (v128.const f64x2 0 0))`);
  for (let i = 0; i < R; i++) lines.push(`(local.set $x${i} (i32.add (local.get $a) (i32.mul (i32.add (local.get $r) (i32.const ${i})) (local.get $as8))))`);
  for (let j = 0; j < C; j++) lines.push(`(local.set $w${j} (i32.add (local.get $w) (i32.mul (i32.add (local.get $o) (i32.const ${j})) (local.get $ws8))))`);
  lines.push('(local.set $kb (i32.const 0))');
  lines.push(`(block $done${R}${C} (loop $k${R}${C}
    (br_if $done${R}${C} (i32.ge_u (local.get $kb) (local.get $d2b)))`);
  for (let i = 0; i < R; i++) lines.push(`(local.set $u${i} (v128.load (i32.add (local.get $x${i}) (local.get $kb))))`);
  for (let j = 0; j < C; j++) {
    lines.push(`(local.set $q (v128.load (i32.add (local.get $w${j}) (local.get $kb))))`);
    for (let i = 0; i < R; i++) lines.push(`(local.set $acc${i}${j} (f64x2.add (local.get $acc${i}${j}) (f64x2.mul (local.get $u${i}) (local.get $q))))`);
  }
  lines.push(`(local.set $kb (i32.add (local.get $kb) (i32.const 16)))
    (br $k${R}${C})))`);
  // An odd last k: one more step on (a_k, 0)·(w_k, 0).
  lines.push('(if (local.get $odd) (then');
  for (let i = 0; i < R; i++) lines.push(`(local.set $u${i} (v128.load64_zero (i32.add (local.get $x${i}) (local.get $d2b))))`);
  for (let j = 0; j < C; j++) {
    lines.push(`(local.set $q (v128.load64_zero (i32.add (local.get $w${j}) (local.get $d2b))))`);
    for (let i = 0; i < R; i++) lines.push(`(local.set $acc${i}${j} (f64x2.add (local.get $acc${i}${j}) (f64x2.mul (local.get $u${i}) (local.get $q))))`);
  }
  lines.push('))');
  // Sum the two lanes and add into out: two outputs at once (one shuffle pair, one vector add), or one.
  for (let i = 0; i < R; i++) {
    const row = `(i32.add (local.get $out) (i32.mul (i32.add (local.get $r) (i32.const ${i})) (local.get $os8)))`;
    const addr = (j) => `(i32.add ${row} (i32.shl (i32.add (local.get $o) (i32.const ${j})) (i32.const 3)))`;
    let j = 0;
    for (; j + 1 < C; j += 2) {
      const a = `(local.get $acc${i}${j})`;
      const b = `(local.get $acc${i}${j + 1})`;
      const sum = `(f64x2.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${a} ${b}) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${a} ${b}))`;
      lines.push(`(local.set $s2 ${sum})`);
      lines.push(`(v128.store ${addr(j)} (f64x2.add (v128.load ${addr(j)}) (local.get $s2)))`);
    }
    for (; j < C; j++) {
      lines.push(`(local.set $s (f64.add (f64x2.extract_lane 0 (local.get $acc${i}${j})) (f64x2.extract_lane 1 (local.get $acc${i}${j}))))`);
      lines.push(`(f64.store ${addr(j)} (f64.add (f64.load ${addr(j)}) (local.get $s)))`);
    }
  }
  return { locals: acc, body: lines.join('\n') };
}

function gemmFunc() {
  const b24 = block(2, 4), b21 = block(2, 1), b14 = block(1, 4), b11 = block(1, 1);
  const accs = [...new Set([...b24.locals, ...b21.locals, ...b14.locals, ...b11.locals])];
  return `(func (export "gemm") (param $out i32) (param $os i32) (param $a i32) (param $as i32) (param $rows i32)
        (param $w i32) (param $ws i32) (param $cols i32) (param $depth i32)
    (local $r i32) (local $o i32) (local $kb i32) (local $d2b i32) (local $odd i32)
    (local $os8 i32) (local $as8 i32) (local $ws8 i32) (local $rows2 i32) (local $cols4 i32)
    (local $x0 i32) (local $x1 i32) (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $u0 v128) (local $u1 v128) (local $q v128) (local $s f64) (local $s2 v128)
    ${accs.map((a) => `(local ${a} v128)`).join(' ')}
    (local.set $os8 (i32.shl (local.get $os) (i32.const 3)))
    (local.set $as8 (i32.shl (local.get $as) (i32.const 3)))
    (local.set $ws8 (i32.shl (local.get $ws) (i32.const 3)))
    (local.set $d2b (i32.shl (i32.and (local.get $depth) (i32.const -2)) (i32.const 3)))
    (local.set $odd (i32.and (local.get $depth) (i32.const 1)))
    (local.set $rows2 (i32.and (local.get $rows) (i32.const -2)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $r (i32.const 0))
    (block $rdone (loop $rloop
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows2)))
      (local.set $o (i32.const 0))
      (block $odone (loop $oloop
        (br_if $odone (i32.ge_u (local.get $o) (local.get $cols4)))
        ${b24.body}
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $oloop)))
      (block $o1done (loop $o1loop
        (br_if $o1done (i32.ge_u (local.get $o) (local.get $cols)))
        ${b21.body}
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $o1loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 2)))
      (br $rloop)))
    (if (i32.lt_u (local.get $r) (local.get $rows)) (then
      (local.set $o (i32.const 0))
      (block $odone1 (loop $oloop1
        (br_if $odone1 (i32.ge_u (local.get $o) (local.get $cols4)))
        ${b14.body}
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $oloop1)))
      (block $o1done1 (loop $o1loop1
        (br_if $o1done1 (i32.ge_u (local.get $o) (local.get $cols)))
        ${b11.body}
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $o1loop1)))))
  )`;
}

/** A float64 as an exact WebAssembly hexadecimal literal. */
function hex(x) {
  if (x === 0) return Object.is(x, -0) ? '-0x0p+0' : '0x0p+0';
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  if (exp === 0 || exp === 0x7ff) throw new Error(`constant ${x} is not a normal number`);
  const mant = ((hi & 0xfffff).toString(16).padStart(5, '0') + lo.toString(16).padStart(8, '0')).replace(/0+$/, '');
  return `${x < 0 ? '-' : ''}0x1${mant ? '.' + mant : ''}p${exp - 1023 >= 0 ? '+' : ''}${exp - 1023}`;
}

/**
 * Arithmetic on one double (type 's') or on two (type 'v', f64x2), so the cells' vector loops and
 * their scalar tails are the same code; `lane` names a second, independent set of temporaries (and
 * the next units in memory), so two vectors' dependency chains can run interleaved. Constants are
 * locals set once per call ($K…), splatted for vectors.
 */
function arith(ty, lane = 0) {
  const p = ty === 'v' ? 'f64x2' : 'f64';
  const sfx = `${ty}${lane}`;
  const op = (name) => (a, b) => `(${p}.${name} ${a} ${b})`;
  return {
    ty,
    /** Byte offset of this lane's units from the loop's pointers, per unit size. */
    skip: (bytesPerUnit) => lane * 2 * bytesPerUnit,
    add: op('add'),
    sub: op('sub'),
    mul: op('mul'),
    div: op('div'),
    get: (name) => `(local.get $${name}_${sfx})`,
    set: (name, e) => `(local.set $${name}_${sfx} ${e})`,
    k: (name) => `(local.get $K${name}_${ty})`,
    load: (ptr, bytesPerUnit = 8, extra = 0) => `(${ty === 'v' ? 'v128' : 'f64'}.load offset=${lane * 2 * bytesPerUnit + extra} (local.get $${ptr}))`,
    store: (ptr, e, bytesPerUnit = 8, extra = 0) => `(${ty === 'v' ? 'v128' : 'f64'}.store offset=${lane * 2 * bytesPerUnit + extra} (local.get $${ptr}) ${e})`,
  };
}

/** Statements leaving fastTanh(local `name`) in local `name` (temporaries $x2, $tp, $tq). */
function tanhInPlace(A, name) {
  const lines = [];
  if (A.ty === 'v') {
    // if (x > 9) x = 9; else if (x < -9) x = -9 — pmax(a, b) is `a < b ? b : a`, pmin(a, b) `b < a ? b : a`: NaN passes.
    lines.push(A.set(name, `(f64x2.pmin (f64x2.pmax ${A.get(name)} ${A.k('m9')}) ${A.k('9')})`));
  } else {
    lines.push(A.set(name, `(select ${A.k('9')} ${A.get(name)} (f64.gt ${A.get(name)} ${A.k('9')}))`));
    lines.push(A.set(name, `(select ${A.k('m9')} ${A.get(name)} (f64.lt ${A.get(name)} ${A.k('m9')}))`));
  }
  lines.push(A.set('x2', A.mul(A.get(name), A.get(name))));
  // p = x·(P0 + x2·(P1 + … + x2·P6)), q = Q0 + x2·(Q1 + x2·(Q2 + x2·Q3)), as written in fastTanh.
  lines.push(A.set('tp', A.mul(A.get('x2'), A.k('P6'))));
  for (let i = 5; i >= 1; i--) lines.push(A.set('tp', A.mul(A.get('x2'), A.add(A.k(`P${i}`), A.get('tp')))));
  lines.push(A.set('tp', A.mul(A.get(name), A.add(A.k('P0'), A.get('tp')))));
  lines.push(A.set('tq', A.mul(A.get('x2'), A.k('Q3'))));
  for (let i = 2; i >= 1; i--) lines.push(A.set('tq', A.mul(A.get('x2'), A.add(A.k(`Q${i}`), A.get('tq')))));
  lines.push(A.set('tq', A.add(A.k('Q0'), A.get('tq'))));
  lines.push(A.set(name, A.div(A.get('tp'), A.get('tq'))));
  return lines;
}

/** fastSigmoid(local `name`) = 0.5 + 0.5·fastTanh(0.5·x), in place. */
function sigmoidInPlace(A, name) {
  return [A.set(name, A.mul(A.k('half'), A.get(name))), ...tanhInPlace(A, name), A.set(name, A.add(A.k('half'), A.mul(A.k('half'), A.get(name))))];
}

/** Locals of the constants, set at the top of a function, for both types. */
function constants(tanh) {
  const values = { half: 0.5, one: 1, 9: 9, m9: -9 };
  tanh.p.forEach((v, i) => (values[`P${i}`] = v));
  tanh.q.forEach((v, i) => (values[`Q${i}`] = v));
  const locals = [];
  const init = [];
  for (const [name, v] of Object.entries(values)) {
    locals.push(`(local $K${name}_v v128) (local $K${name}_s f64)`);
    init.push(`(local.set $K${name}_s (f64.const ${hex(v)}))`, `(local.set $K${name}_v (v128.const f64x2 ${hex(v)} ${hex(v)}))`);
  }
  return { locals: locals.join(' '), init: init.join('\n') };
}

const TEMPS = ['x2', 'tp', 'tq', 'i', 'f', 'g', 'o', 'c', 'cp', 'tc', 'dh', 'dcj', 'za', 'zb', 'zc', 'zd'];
/** Vector lanes of independent temporaries the unit loops may interleave. */
const MAX_LANES = 2;
const tempLocals = () =>
  TEMPS.map((t) => [...Array.from({ length: MAX_LANES }, (_, l) => `(local $${t}_v${l} v128)`), `(local $${t}_s0 f64)`].join(' ')).join(' ');

/** Two lanes: (lane `la` of a, lane `lb` of b). */
function pick(a, la, b, lb) {
  const bytes = (base, lane) => Array.from({ length: 8 }, (_, k) => base + 8 * lane + k);
  return `(i8x16.shuffle ${[...bytes(0, la), ...bytes(16, lb)].join(' ')} ${a} ${b})`;
}

/**
 * Loads the four gates of units j, j+1 (z at byte $zq: i f g o i f g o) as vectors of the two units,
 * or of unit j alone (scalar).
 */
function loadGates(A) {
  if (A.ty === 's') return ['i', 'f', 'g', 'o'].map((gname, k) => A.set(gname, A.load('zq', 32, 8 * k)));
  return [
    ...['za', 'zb', 'zc', 'zd'].map((name, k) => A.set(name, `(v128.load offset=${A.skip(32) + 16 * k} (local.get $zq))`)),
    A.set('i', pick(A.get('za'), 0, A.get('zc'), 0)),
    A.set('f', pick(A.get('za'), 1, A.get('zc'), 1)),
    A.set('g', pick(A.get('zb'), 0, A.get('zd'), 0)),
    A.set('o', pick(A.get('zb'), 1, A.get('zd'), 1)),
  ];
}

/** Stores four per-gate values (expressions of vectors or scalars) back into z at $zq, interleaved. */
function storeGates(A, [i, f, g, o]) {
  if (A.ty === 's') return [i, f, g, o].map((e, k) => A.store('zq', e, 32, 8 * k));
  return [
    `(v128.store offset=${A.skip(32)} (local.get $zq) ${pick(i, 0, f, 0)})`,
    `(v128.store offset=${A.skip(32) + 16} (local.get $zq) ${pick(g, 0, o, 0)})`,
    `(v128.store offset=${A.skip(32) + 32} (local.get $zq) ${pick(i, 1, f, 1)})`,
    `(v128.store offset=${A.skip(32) + 48} (local.get $zq) ${pick(g, 1, o, 1)})`,
  ];
}

/** Statement lists of independent lanes, merged one statement of each at a time. */
function interleave(lists) {
  const out = [];
  for (let k = 0; k < Math.max(...lists.map((l) => l.length)); k++) for (const l of lists) if (k < l.length) out.push(l[k]);
  return out.join('\n');
}

/**
 * A loop over units: 2·lanes at a time (`lanes` vectors, their statements interleaved so their
 * dependency chains overlap), then two, then the odd last one as scalars. `body(A)` is one vector's
 * (or scalar's) statements at the loop's pointers; `ptrs` are [local, bytes per unit].
 */
function unitLoop(body, ptrs, lanes) {
  const LANES = lanes;
  const V = Array.from({ length: LANES }, (_, l) => arith('v', l));
  const S = arith('s');
  const advance = (units) => ptrs.map(([name, perUnit]) => `(local.set $${name} (i32.add (local.get $${name}) (i32.const ${units * perUnit})))`).join('\n');
  return `(local.set $j (i32.const 0))
    (block $wdone (loop $wloop
      (br_if $wdone (i32.gt_u (i32.add (local.get $j) (i32.const ${2 * LANES})) (local.get $n)))
      ${interleave(V.map((A) => body(A)))}
      ${advance(2 * LANES)}
      (local.set $j (i32.add (local.get $j) (i32.const ${2 * LANES})))
      (br $wloop)))
    (block $vdone (loop $vloop
      (br_if $vdone (i32.gt_u (i32.add (local.get $j) (i32.const 2)) (local.get $n)))
      ${body(V[0]).join('\n')}
      ${advance(2)}
      (local.set $j (i32.add (local.get $j) (i32.const 2)))
      (br $vloop)))
    (if (i32.lt_u (local.get $j) (local.get $n)) (then
      ${body(S).join('\n')}))`;
}

/** The forward cell: model/fast-lstm.ts lstmCell, operation for operation. */
function cellFunc(tanh) {
  const K = constants(tanh);
  const body = (A) => [
    ...loadGates(A),
    ...sigmoidInPlace(A, 'i'),
    ...sigmoidInPlace(A, 'f'),
    ...tanhInPlace(A, 'g'),
    ...sigmoidInPlace(A, 'o'),
    ...storeGates(A, [A.get('i'), A.get('f'), A.get('g'), A.get('o')]),
    // c = f·cPrev + i·g; h = o·tanh(c). cPrev may be c (read before the store).
    A.set('c', A.add(A.mul(A.get('f'), A.load('cp')), A.mul(A.get('i'), A.get('g')))),
    A.store('cq', A.get('c')),
    ...tanhInPlace(A, 'c'),
    A.store('hq', A.mul(A.get('o'), A.get('c'))),
  ];
  return `(func (export "cell") (param $zq i32) (param $cp i32) (param $cq i32) (param $hq i32) (param $n i32)
    (local $j i32)
    ${tempLocals()} ${K.locals}
    ${K.init}
    ${unitLoop(body, [['zq', 32], ['cp', 8], ['cq', 8], ['hq', 8]], 1)}
  )`;
}

/** The backward cell: train/fast-network.ts lstmCellBack, operation for operation. */
function cellBackFunc(tanh) {
  const K = constants(tanh);
  const body = (A) => {
    const one = A.k('one');
    return [
      ...loadGates(A),
      A.set('tc', A.load('cq')),
      ...tanhInPlace(A, 'tc'),
      A.set('cp', A.load('cpq')),
      // dh = dh + dOut; dc = dh·o·(1 − tc²) + dc; dc_prev = dc·f
      A.set('dh', A.add(A.load('dhq'), A.load('doq'))),
      A.set('dcj', A.add(A.mul(A.mul(A.get('dh'), A.get('o')), A.sub(one, A.mul(A.get('tc'), A.get('tc')))), A.load('dcq'))),
      A.store('dcq', A.mul(A.get('dcj'), A.get('f'))),
      ...storeGates(A, [
        A.mul(A.mul(A.mul(A.get('dcj'), A.get('g')), A.get('i')), A.sub(one, A.get('i'))),
        A.mul(A.mul(A.mul(A.get('dcj'), A.get('cp')), A.get('f')), A.sub(one, A.get('f'))),
        A.mul(A.mul(A.get('dcj'), A.get('i')), A.sub(one, A.mul(A.get('g'), A.get('g')))),
        A.mul(A.mul(A.mul(A.get('dh'), A.get('tc')), A.get('o')), A.sub(one, A.get('o'))),
      ]),
    ];
  };
  return `(func (export "cellBack") (param $zq i32) (param $cq i32) (param $cpq i32) (param $dhq i32) (param $doq i32) (param $dcq i32) (param $n i32)
    (local $j i32)
    ${tempLocals()} ${K.locals}
    ${K.init}
    ${unitLoop(body, [['zq', 32], ['cq', 8], ['cpq', 8], ['dhq', 8], ['doq', 8], ['dcq', 8]], 2)}
  )`;
}

/** out[c][r] = a[r][c] for a [rows][cols]: 2 × 2 blocks through two shuffles, scalar edges. */
function transposeFunc() {
  return `(func (export "transpose") (param $out i32) (param $a i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $src i32) (local $dst i32) (local $rows8 i32) (local $cols8 i32) (local $p v128) (local $q v128)
    (local.set $rows8 (i32.shl (local.get $rows) (i32.const 3)))
    (local.set $cols8 (i32.shl (local.get $cols) (i32.const 3)))
    (local.set $r (i32.const 0))
    (block $rdone (loop $rloop
      (br_if $rdone (i32.gt_u (i32.add (local.get $r) (i32.const 2)) (local.get $rows)))
      (local.set $src (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $cols8))))
      (local.set $dst (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 3))))
      (local.set $c (i32.const 0))
      (block $cdone (loop $cloop
        (br_if $cdone (i32.gt_u (i32.add (local.get $c) (i32.const 2)) (local.get $cols)))
        (local.set $p (v128.load (local.get $src)))
        (local.set $q (v128.load (i32.add (local.get $src) (local.get $cols8))))
        (v128.store (local.get $dst) ${pick('(local.get $p)', 0, '(local.get $q)', 0)})
        (v128.store (i32.add (local.get $dst) (local.get $rows8)) ${pick('(local.get $p)', 1, '(local.get $q)', 1)})
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $rows8) (i32.const 1))))
        (local.set $c (i32.add (local.get $c) (i32.const 2)))
        (br $cloop)))
      (if (i32.lt_u (local.get $c) (local.get $cols)) (then
        (f64.store (local.get $dst) (f64.load (local.get $src)))
        (f64.store offset=8 (local.get $dst) (f64.load (i32.add (local.get $src) (local.get $cols8))))))
      (local.set $r (i32.add (local.get $r) (i32.const 2)))
      (br $rloop)))
    (if (i32.lt_u (local.get $r) (local.get $rows)) (then
      (local.set $src (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $cols8))))
      (local.set $dst (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 3))))
      (local.set $c (i32.const 0))
      (block $c1done (loop $c1loop
        (br_if $c1done (i32.ge_u (local.get $c) (local.get $cols)))
        (f64.store (local.get $dst) (f64.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 8)))
        (local.set $dst (i32.add (local.get $dst) (local.get $rows8)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $c1loop)))))
  )`;
}

export function kernelsWat(tanh) {
  if (tanh?.p?.length !== 7 || tanh?.q?.length !== 4) throw new Error('kernelsWat needs fastTanh\'s coefficients { p: [7], q: [4] }');
  return `(module
  (import "env" "memory" (memory 1))
  ${gemmFunc()}
  ${cellFunc(tanh)}
  ${cellBackFunc(tanh)}
  ${transposeFunc()}
)`;
}
