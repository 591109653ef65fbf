/**
 * A minimal XML well-formedness check for the SVGs we generate (no DOM parser in Node, and no npm
 * dependency for one test concern). Covers what our writer can get wrong: unbalanced or misnested tags,
 * a raw `<` or `&` in text or attribute values, unquoted or duplicate attributes, more than one root.
 * Returns a list of problems; empty means well-formed for this subset of XML (no DTDs, no CDATA).
 */
export function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  const checkText = (s: string, where: string) => {
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '<') problems.push(`raw '<' in ${where}`);
      if (s[i] === '&') {
        entity.lastIndex = i;
        if (!entity.test(s)) problems.push(`unescaped '&' in ${where}: ${JSON.stringify(s.slice(i, i + 12))}`);
      }
    }
  };
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/y;
  const attr = /([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt === -1 ? xml.length : lt;
    const txt = xml.slice(i, textEnd);
    if (stack.length === 0 && txt.trim() !== '') problems.push(`text outside the root element: ${JSON.stringify(txt.slice(0, 20))}`);
    checkText(txt, 'text');
    if (lt === -1) break;
    if (xml.startsWith('<?', lt)) {
      const end = xml.indexOf('?>', lt);
      if (end === -1) return [...problems, 'unterminated <?'];
      i = end + 2;
      continue;
    }
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt);
      if (end === -1) return [...problems, 'unterminated comment'];
      i = end + 3;
      continue;
    }
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) {
      problems.push(`malformed tag at ${lt}: ${JSON.stringify(xml.slice(lt, lt + 30))}`);
      i = lt + 1;
      continue;
    }
    const [, close, name, attrs, selfClose] = m;
    if (close) {
      if (attrs || selfClose) problems.push(`closing tag </${name}> with attributes`);
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else {
      if (stack.length === 0) roots++;
      const seen = new Set<string>();
      for (const a of attrs!.matchAll(attr)) {
        if (seen.has(a[1]!)) problems.push(`duplicate attribute ${a[1]} on <${name}>`);
        seen.add(a[1]!);
        checkText(a[2] ?? a[3] ?? '', `attribute ${a[1]} of <${name}>`);
      }
      if (!selfClose) stack.push(name!);
    }
    i = tag.lastIndex;
  }
  if (stack.length) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}
