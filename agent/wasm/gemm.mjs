/**
 * Generates the trainer's matrix kernel as WebAssembly text: gemm(out, oStride, a, aStride, rows, w,
 * wStride, cols, depth) adds Σ_k a[r][k]·w[o][k] to out[r][o] (byte addresses, strides in
 * elements, float64), two k at a time with f64x2 SIMD. Blocks of 2 rows × 4 outputs share loads;
 * the edges use 2×1, 1×4 and 1×1 blocks of the same code.
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
  // Sum the two lanes, add the odd last k if any, add into out.
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < C; j++) {
      const addr = `(i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $r) (i32.const ${i})) (local.get $os8))) (i32.shl (i32.add (local.get $o) (i32.const ${j})) (i32.const 3)))`;
      lines.push(`(local.set $s (f64.add (f64x2.extract_lane 0 (local.get $acc${i}${j})) (f64x2.extract_lane 1 (local.get $acc${i}${j}))))`);
      lines.push(`(if (local.get $odd) (then (local.set $s (f64.add (local.get $s) (f64.mul (f64.load (i32.add (local.get $x${i}) (local.get $d2b))) (f64.load (i32.add (local.get $w${j}) (local.get $d2b))))))))`);
      lines.push(`(f64.store ${addr} (f64.add (f64.load ${addr}) (local.get $s)))`);
    }
  }
  return { locals: acc, body: lines.join('\n') };
}

export function gemmWat() {
  const b24 = block(2, 4), b21 = block(2, 1), b14 = block(1, 4), b11 = block(1, 1);
  const accs = [...new Set([...b24.locals, ...b21.locals, ...b14.locals, ...b11.locals])];
  return `(module
  (import "env" "memory" (memory 1))
  (func (export "gemm") (param $out i32) (param $os i32) (param $a i32) (param $as i32) (param $rows i32)
        (param $w i32) (param $ws i32) (param $cols i32) (param $depth i32)
    (local $r i32) (local $o i32) (local $kb i32) (local $d2b i32) (local $odd i32)
    (local $os8 i32) (local $as8 i32) (local $ws8 i32) (local $rows2 i32) (local $cols4 i32)
    (local $x0 i32) (local $x1 i32) (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $u0 v128) (local $u1 v128) (local $q v128) (local $s f64)
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
  )
)`;
}
