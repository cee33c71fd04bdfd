/**
 * Guards installed in every plugin isolate before the plugin's own code runs (sent as source,
 * like sandbox-main.ts, so it may use no import and no outer variable).
 *
 * Why: V8 stops a script that runs past its time limit by checking an interrupt flag, and several
 * builtins never check it while they walk a huge length: `Array.from({length: 1e8})`,
 * `new Array(1e9).fill(0)`, `indexOf`/`slice`/`sort`/`reverse` of a sparse array with a length in
 * the billions, `forEach` over `{length: 1e15}`, `JSON.parse` of deeply nested text, a global
 * `replace` on a huge string. Measured here: each of those kept running after its 50 ms limit,
 * some even after the isolate was disposed, several growing the process by hundreds of MB or
 * ending in V8's out-of-memory abort. An array longer than the isolate's memory could hold as
 * elements is never a real array a plugin needs, so each of these builtins first checks the length
 * it is about to walk against the entry's memory limit and throws a RangeError instead: the
 * plugin fails at once, with a message that says why, instead of taking a thread.
 *
 * WebAssembly, SharedArrayBuffer and Atomics are removed unless the entry grants
 * `permissions: { wasm: true }`; when granted, every WebAssembly memory must declare a maximum and
 * their maxima together must fit in the entry's memory limit (WebAssembly memory is not V8 heap,
 * so the isolate's own limit does not see it). FinalizationRegistry is removed: its callbacks run
 * outside any call the host made, with no time limit.
 */
declare const globalThis: Record<string, unknown>;

export interface GuardSettings {
  memoryBytes: number;
  wasm: boolean;
}

export function sandboxGuards(g: Record<string, unknown>, settings: GuardSettings): { wasmBytes(): number; refusals(): string } {
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const RangeErrorCtor = RangeError;
  const TypeErrorCtor = TypeError;
  const floor = Math.floor;
  const mb = Math.round(settings.memoryBytes / 1048576);
  // 16 bytes an element: an array this long could not be held in the isolate's heap.
  const maxElements = Math.max(65536, floor(settings.memoryBytes / 16));
  const maxChars = Math.max(1 << 20, settings.memoryBytes);

  function lengthOf(v: unknown): number {
    if (v === null || v === undefined) return 0;
    const n = Number((v as { length?: unknown }).length);
    if (!(n > 0)) return 0;
    return n === Infinity ? 9007199254740991 : floor(n);
  }
  /** What was refused since the host last asked (the first of them), "" for nothing. */
  let refused = "";
  function tooLong(what: string, n: number, max: number): Error {
    if (refused === "") refused = `${what} with a length of ${n}`;
    return new RangeErrorCtor(`${what}: a length of ${n} is more than a plugin limited to ${mb} MB can use (at most ${max}); this is refused before it runs because V8 cannot stop it in time`);
  }

  /** Replaces `proto[name]` with a method that checks this's length (or its argument's) first. */
  function guard(proto: Record<string, unknown>, name: string, check: (self: unknown, args: unknown[]) => void): void {
    const original = proto[name];
    if (typeof original !== "function") return;
    const wrapped = {
      [name](this: unknown, ...args: unknown[]): unknown {
        check(this, args);
        return apply(original as (...a: unknown[]) => unknown, this, args);
      },
    }[name]!;
    defineProperty(wrapped, "length", { value: (original as { length: number }).length });
    defineProperty(proto, name, { value: wrapped, writable: true, enumerable: false, configurable: true });
  }
  const selfLength = (owner: string, name: string, max: number) => (self: unknown) => {
    const n = lengthOf(self);
    if (n > max) throw tooLong(`${owner}.${name}`, n, max);
  };

  const arrayProto = Array.prototype as unknown as Record<string, unknown>;
  const walking = ["fill", "indexOf", "lastIndexOf", "includes", "join", "toString", "toLocaleString", "map", "forEach", "filter", "some", "every",
    "find", "findIndex", "findLast", "findLastIndex", "reduce", "reduceRight", "slice", "splice", "reverse", "copyWithin", "sort", "flat",
    "flatMap", "unshift", "shift", "concat", "toSorted", "toReversed", "toSpliced", "with"];
  for (let i = 0; i < walking.length; i++) guard(arrayProto, walking[i]!, selfLength("Array.prototype", walking[i]!, maxElements));

  const iteratorSymbol = Symbol.iterator;
  const arrayStatics = Array as unknown as Record<string, unknown>;
  guard(arrayStatics, "from", (_self, args) => {
    const items = args[0];
    if (items === null || items === undefined) return;
    // An array-like or a string of that length is walked by the builtin itself.
    const n = lengthOf(items);
    if (n > maxElements) throw tooLong("Array.from", n, maxElements);
  });

  // Typed arrays are bounded by their buffer (counted against the memory limit), but sorting or
  // joining tens of millions of elements still runs far past any time limit.
  const typedProto = getPrototypeOf(Uint8Array.prototype) as Record<string, unknown>;
  const typedWalking = ["sort", "join", "indexOf", "lastIndexOf", "includes", "map", "filter", "reduce", "reduceRight", "reverse", "toSorted", "toLocaleString", "toString"];
  for (let i = 0; i < typedWalking.length; i++) guard(typedProto, typedWalking[i]!, selfLength("TypedArray.prototype", typedWalking[i]!, maxElements));

  const stringProto = String.prototype as unknown as Record<string, unknown>;
  guard(stringProto, "repeat", (self, args) => {
    const n = lengthOf(self) * (Number(args[0]) || 0);
    if (n > maxChars) throw tooLong("String.prototype.repeat", n, maxChars);
  });
  for (const name of ["padStart", "padEnd"]) {
    guard(stringProto, name, (_self, args) => {
      const n = Number(args[0]) || 0;
      if (n > maxChars) throw tooLong(`String.prototype.${name}`, n, maxChars);
    });
  }
  for (const name of ["replace", "replaceAll", "split", "match", "matchAll"]) guard(stringProto, name, selfLength("String.prototype", name, maxElements));
  // `[...text]` and `Array.from(text)` walk the string's iterator inside a builtin.
  const stringIterator = stringProto[iteratorSymbol as unknown as string] as (this: string) => unknown;
  defineProperty(stringProto, iteratorSymbol, {
    value: {
      [iteratorSymbol](this: unknown): unknown {
        const n = lengthOf(this);
        if (n > maxElements) throw tooLong("String.prototype[Symbol.iterator]", n, maxElements);
        return apply(stringIterator, this, []);
      },
    }[iteratorSymbol as unknown as string],
    writable: true, enumerable: false, configurable: true,
  });

  // Each element becomes an object of its own: a quarter of the array bound.
  const objectStatics = Object as unknown as Record<string, unknown>;
  for (const name of ["entries", "values", "keys", "fromEntries", "assign", "getOwnPropertyNames", "getOwnPropertyDescriptors"]) {
    guard(objectStatics, name, (_self, args) => {
      const n = lengthOf(args[name === "assign" ? 1 : 0]);
      if (n > maxElements / 4) throw tooLong(`Object.${name}`, n, floor(maxElements / 4));
    });
  }

  const json = JSON as unknown as Record<string, unknown>;
  const charCodeAt = String.prototype.charCodeAt;
  guard(json, "parse", (_self, args) => {
    const text = args[0];
    if (typeof text !== "string") return;
    if (text.length > maxChars) throw tooLong("JSON.parse", text.length, maxChars);
    if (text.length < 65536) return;
    // V8's parser does not check the time limit while it nests: refuse very deep text first (a
    // plain loop, which the limit does stop).
    let depth = 0, inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = apply(charCodeAt, text, [i]) as number;
      if (inString) { if (c === 92) i++; else if (c === 34) inString = false; continue; }
      if (c === 34) inString = true;
      else if (c === 91 || c === 123) {
        if (++depth > 10000) {
          if (refused === "") refused = "JSON.parse of text nested deeper than 10000 levels";
          throw new RangeErrorCtor("JSON.parse: the text nests deeper than 10000 levels");
        }
      }
      else if (c === 93 || c === 125) depth--;
    }
  });

  delete g.FinalizationRegistry;

  const memories: { deref(): unknown }[] = [];
  const WeakRefCtor = WeakRef;
  const wasmBudgetPages = floor(settings.memoryBytes / 65536);
  if (!settings.wasm) {
    delete g.WebAssembly;
    delete g.SharedArrayBuffer;
    delete g.Atomics;
  } else {
    installWasmAccounting();
  }

  /** Pages reserved by the WebAssembly memories still alive. */
  function reservedPages(): number {
    let pages = 0;
    for (let i = 0; i < memories.length; i++) {
      const m = memories[i]!.deref() as { __weirMax?: number } | undefined;
      if (m !== undefined) pages += m.__weirMax ?? 0;
    }
    return pages;
  }

  function installWasmAccounting(): void {
    const W = g.WebAssembly as Record<string, unknown> & { Memory: new (d: unknown) => object; Module: new (b: unknown) => object; Instance: new (m: object, i?: unknown) => { exports: Record<string, unknown> } };
    const MemoryCtor = W.Memory;
    const ModuleCtor = W.Module;
    const InstanceCtor = W.Instance;
    const maxSlot = new WeakMap<object, number>();
    function track(mem: object, maxPages: number): void {
      if (maxSlot.has(mem)) return;
      maxSlot.set(mem, maxPages);
      defineProperty(mem, "__weirMax", { value: maxPages });
      memories.push(new WeakRefCtor(mem));
    }
    function reserve(pages: number, what: string): void {
      if (reservedPages() + pages > wasmBudgetPages)
        throw new RangeErrorCtor(`${what}: WebAssembly memories may reserve at most ${mb} MB in all (this plugin's memoryMb); declare a smaller maximum`);
    }
    const Memory = function Memory(this: unknown, descriptor: { initial?: unknown; maximum?: unknown }) {
      if (new.target === undefined) throw new TypeErrorCtor("WebAssembly.Memory must be called with new");
      const max = Number(descriptor?.maximum);
      if (!(max >= 0)) throw new RangeErrorCtor("WebAssembly.Memory: a plugin's memory must declare a maximum (pages of 64 KiB)");
      reserve(max, "WebAssembly.Memory");
      const mem = new MemoryCtor(descriptor);
      track(mem, max);
      return mem;
    } as unknown as Record<string, unknown>;
    Memory.prototype = MemoryCtor.prototype;
    (W as Record<string, unknown>).Memory = Memory;

    /** The memory limits a module defines itself (section 5), in pages: [initial, maximum | -1]. */
    function definedMemories(bytes: unknown): number[][] {
      let view: Uint8Array;
      if (bytes instanceof ArrayBuffer) view = new Uint8Array(bytes);
      else if (ArrayBuffer.isView(bytes)) view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      else return [];
      let p = 8;
      const leb = (): number => {
        let result = 0, shift = 0, b: number;
        do { b = view[p++]!; result += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80 && p < view.length);
        return result;
      };
      const out: number[][] = [];
      while (p < view.length) {
        const id = view[p++]!;
        const size = leb();
        const end = p + size;
        if (id === 5) {
          const count = leb();
          for (let i = 0; i < count; i++) {
            const flags = leb();
            const initial = leb();
            const maximum = flags & 1 ? leb() : -1;
            out.push([initial, maximum]);
          }
        }
        p = end;
      }
      return out;
    }
    function checkModule(bytes: unknown): number {
      const defined = definedMemories(bytes);
      let pages = 0;
      for (let i = 0; i < defined.length; i++) {
        const max = defined[i]![1]!;
        if (max < 0) throw new RangeErrorCtor("WebAssembly: a plugin's module must declare a maximum for the memory it defines");
        pages += max;
      }
      reserve(pages, "WebAssembly.Module");
      return pages;
    }
    const modulePages = new WeakMap<object, number>();
    const Module = function Module(this: unknown, bytes: unknown) {
      if (new.target === undefined) throw new TypeErrorCtor("WebAssembly.Module must be called with new");
      const pages = checkModule(bytes);
      const m = new ModuleCtor(bytes);
      modulePages.set(m, pages);
      return m;
    } as unknown as Record<string, unknown>;
    Module.prototype = ModuleCtor.prototype;
    for (const k of ["imports", "exports", "customSections"]) Module[k] = (ModuleCtor as unknown as Record<string, unknown>)[k];
    (W as Record<string, unknown>).Module = Module;
    const trackExports = (inst: { exports: Record<string, unknown> }, module: object) => {
      const exportsObj = inst.exports;
      let pages = modulePages.get(module) ?? 0;
      for (const key of Object.keys(exportsObj)) {
        const v = exportsObj[key];
        if (v instanceof MemoryCtor && !maxSlot.has(v)) { track(v, pages); pages = 0; }
      }
    };
    const Instance = function Instance(this: unknown, module: object, imports?: unknown) {
      if (new.target === undefined) throw new TypeErrorCtor("WebAssembly.Instance must be called with new");
      if (!modulePages.has(module)) throw new TypeErrorCtor("WebAssembly.Instance: the module must be made with new WebAssembly.Module");
      reserve(modulePages.get(module)!, "WebAssembly.Instance");
      const inst = new InstanceCtor(module, imports);
      trackExports(inst, module);
      return inst;
    } as unknown as Record<string, unknown>;
    Instance.prototype = InstanceCtor.prototype;
    (W as Record<string, unknown>).Instance = Instance;
    // The asynchronous forms finish outside the host's call (no time limit): they are served by
    // the synchronous ones, which are checked above.
    W.compile = (bytes: unknown) => new Promise((resolve) => resolve(new (Module as unknown as new (b: unknown) => object)(bytes)));
    W.instantiate = (source: unknown, imports?: unknown) => new Promise((resolve) => {
      const isModule = source instanceof ModuleCtor;
      const module = isModule ? source as object : new (Module as unknown as new (b: unknown) => object)(source);
      const instance = new (Instance as unknown as new (m: object, i?: unknown) => object)(module, imports);
      resolve(isModule ? instance : { module, instance });
    });
    delete W.compileStreaming;
    delete W.instantiateStreaming;
  }

  return {
    refusals(): string {
      const r = refused;
      refused = "";
      return r;
    },
    /** Bytes of WebAssembly memory in use now. */
    wasmBytes(): number {
      let bytes = 0;
      for (let i = 0; i < memories.length; i++) {
        const m = memories[i]!.deref() as { buffer: ArrayBuffer } | undefined;
        if (m !== undefined) bytes += m.buffer.byteLength;
      }
      return bytes;
    },
  };
}
