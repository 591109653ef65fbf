/**
 * A GPIO input as the drivers see it: the subset of onoff's `Gpio` they use (watch / unwatchAll /
 * read / unexport), so the real input is onoff itself and an emulated one (hw/emulated/tach.ts)
 * implements the same methods.
 *
 * One addition: the watch callback may get the edge's time as a third argument. onoff does not give
 * one (it reports an edge when its epoll callback runs), so with real hardware the driver stamps the
 * edge with its clock when the callback runs; an emulated input knows the exact instant and passes it.
 *
 * `openGpioInput` imports onoff lazily (CONVENTIONS.md, habit 4).
 */

export type BinaryValue = 0 | 1;
export type Edge = 'rising' | 'falling' | 'both';
export type EdgeCallback = (err: Error | null | undefined, value: BinaryValue, atMs?: number) => void;

export interface GpioInput {
  watch(callback: EdgeCallback): void;
  unwatchAll(): void;
  read(): Promise<BinaryValue>;
  /** Releases the pin (onoff: unexport from sysfs). */
  unexport(): void;
}

/**
 * Opens BCM GPIO `pin` as an input with interrupts on `edge` through onoff (sysfs). Debouncing is the
 * driver's, on its clock, so onoff's own debounce is off. On kernels that number sysfs GPIOs from a
 * base (Raspberry Pi OS with kernel 6.6+: gpiochip512), pass `base` to add it.
 */
export async function openGpioInput(pin: number, edge: Edge, base = 0): Promise<GpioInput> {
  if (!Number.isInteger(pin) || pin < 0) throw new RangeError(`check 'gpio-pin' failed: pin must be an integer >= 0, got ${String(pin)}`);
  let Gpio: typeof import('onoff').Gpio;
  try {
    ({ Gpio } = await import('onoff'));
  } catch (err) {
    throw new Error(`cannot load onoff (the GPIO module): ${(err as Error).message}`, { cause: err });
  }
  if (!Gpio.accessible) throw new Error('GPIO is not accessible here (no /sys/class/gpio, or no permission: is the user in group gpio?)');
  try {
    return new Gpio(pin + base, 'in', edge, { debounceTimeout: 0 }) as unknown as GpioInput;
  } catch (err) {
    throw new Error(`cannot open GPIO ${pin + base} as an input: ${(err as Error).message}`, { cause: err });
  }
}
