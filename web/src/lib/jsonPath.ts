// JSON paths as the API reports them (`definition.steps[1].next`) and where a
// path sits in the text of a JSON document, so an error can be pinned to the
// line the user typed. A small position-recording JSON parser: JSON.parse
// knows no positions.

export type Segment = string | number;

/** `definition.steps[1].parallel.steps[0].next` → ["definition","steps",1,"parallel","steps",0,"next"]. */
export function parsePath(path: string): Segment[] {
  const segments: Segment[] = [];
  const pattern = /([^.[\]]+)|\[(\d+)\]/g;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(path)) !== null) {
    if (match[2] !== undefined) segments.push(Number(match[2]));
    else if (/^\d+$/.test(match[1]) && segments.length > 0) segments.push(Number(match[1]));
    else segments.push(match[1]);
  }
  return segments;
}

export function formatPath(segments: Segment[]): string {
  return segments
    .map((segment, index) =>
      typeof segment === "number" ? `[${segment}]` : index === 0 ? segment : `.${segment}`,
    )
    .join("");
}

export interface Span {
  /** Where the key (for an object member) or the value starts. */
  start: number;
  end: number;
  line: number; // 1-based
  column: number; // 1-based
}

export interface Located {
  span: Span;
  /** How many segments of the requested path were found (all of them for an exact hit). */
  depth: number;
}

export class JsonSyntaxError extends Error {
  readonly offset: number;
  readonly line: number;
  readonly column: number;

  constructor(message: string, offset: number, text: string) {
    const { line, column } = lineColumn(text, offset);
    super(`${message} at line ${line}, column ${column}`);
    this.name = "JsonSyntaxError";
    this.offset = offset;
    this.line = line;
    this.column = column;
  }
}

export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lastBreak = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      lastBreak = i;
    }
  }
  return { line, column: offset - lastBreak };
}

interface Node {
  start: number;
  end: number;
  keyStart?: number;
  children?: Map<Segment, Node>;
}

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): Node {
    this.space();
    const node = this.value();
    this.space();
    if (this.pos < this.text.length) this.fail("Unexpected text after the document");
    return node;
  }

  private fail(message: string): never {
    throw new JsonSyntaxError(message, this.pos, this.text);
  }

  private space(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  private value(): Node {
    const ch = this.text[this.pos];
    if (ch === "{") return this.object();
    if (ch === "[") return this.array();
    if (ch === '"') {
      const start = this.pos;
      this.string();
      return { start, end: this.pos };
    }
    const start = this.pos;
    const literal = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      this.text.slice(this.pos, this.pos + 64),
    );
    if (!literal) this.fail(ch === undefined ? "Unexpected end of the document" : `Unexpected '${ch}'`);
    this.pos += literal[0].length;
    return { start, end: this.pos };
  }

  private string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos];
      if (ch === "\\") {
        this.pos += 2;
        continue;
      }
      if (ch === '"') {
        this.pos++;
        return JSON.parse(this.text.slice(start, this.pos)) as string;
      }
      if (ch === "\n") this.fail("Unterminated string");
      this.pos++;
    }
    this.pos = start;
    return this.fail("Unterminated string");
  }

  private object(): Node {
    const start = this.pos;
    const children = new Map<Segment, Node>();
    this.pos++;
    this.space();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return { start, end: this.pos, children };
    }
    for (;;) {
      this.space();
      if (this.text[this.pos] !== '"') this.fail("Expected a quoted property name");
      const keyStart = this.pos;
      const key = this.string();
      this.space();
      if (this.text[this.pos] !== ":") this.fail("Expected ':' after a property name");
      this.pos++;
      this.space();
      const child = this.value();
      children.set(key, { ...child, keyStart });
      this.space();
      const ch = this.text[this.pos];
      if (ch === ",") {
        this.pos++;
        continue;
      }
      if (ch === "}") {
        this.pos++;
        return { start, end: this.pos, children };
      }
      this.fail("Expected ',' or '}'");
    }
  }

  private array(): Node {
    const start = this.pos;
    const children = new Map<Segment, Node>();
    this.pos++;
    this.space();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return { start, end: this.pos, children };
    }
    for (let index = 0; ; index++) {
      this.space();
      children.set(index, this.value());
      this.space();
      const ch = this.text[this.pos];
      if (ch === ",") {
        this.pos++;
        continue;
      }
      if (ch === "]") {
        this.pos++;
        return { start, end: this.pos, children };
      }
      this.fail("Expected ',' or ']'");
    }
  }
}

/** Throws JsonSyntaxError with the line and column of the first problem. */
export function checkJson(text: string): void {
  new Parser(text).parseDocument();
}

/**
 * Where `segments` points in `text`: the key of an object member (so the user
 * sees `"next": ...`), or the value of an array item. When the path goes
 * deeper than the document (a missing required field), the deepest existing
 * ancestor is returned, with `depth` telling how far it got. Null when the
 * text does not parse.
 */
export function locate(text: string, segments: Segment[]): Located | null {
  let root: Node;
  try {
    root = new Parser(text).parseDocument();
  } catch {
    return null;
  }
  let node = root;
  let depth = 0;
  for (const segment of segments) {
    const child = node.children?.get(segment);
    if (!child) break;
    node = child;
    depth++;
  }
  const start = node.keyStart ?? node.start;
  const { line, column } = lineColumn(text, start);
  return { span: { start, end: node.end, line, column }, depth };
}
