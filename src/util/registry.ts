import { UserError } from '../errors.js';

/**
 * A registry of named things (experiments, MTL weightings, FFN kinds, benchmarks) in the style of LibMTL and
 * timm: `register` once at module load, `get` by name with an error that lists what is known. Browser-safe.
 */
export class Registry<T> {
  private readonly items = new Map<string, T>();

  /** `what` names the kind of thing in errors ("experiment", "weighting", …). */
  constructor(readonly what: string) {}

  /**
   * Registers `item` under `name`. Registering the same item again is a no-op (modules may be loaded twice
   * through different entry points); a different item under a taken name throws.
   */
  register(name: string, item: T): void {
    const prev = this.items.get(name);
    if (prev !== undefined && prev !== item) throw new Error(`${this.what} "${name}" registered twice`);
    this.items.set(name, item);
  }

  has(name: string): boolean {
    return this.items.has(name);
  }

  /** The item named `name`; a UserError listing the known names when there is none. */
  get(name: string, hint = ''): T {
    const item = this.items.get(name);
    if (item === undefined) throw new UserError(`unknown ${this.what} "${name}" (known: ${this.names().join(', ')}${hint ? `; ${hint}` : ''})`);
    return item;
  }

  names(): string[] {
    return [...this.items.keys()];
  }

  list(): T[] {
    return [...this.items.values()];
  }
}
