/**
 * Test fixture: the system's Chromium, driven by playwright-core (which brings no browser of its
 * own). Not a test file; importing it has no side effect.
 *
 * The executable is $CHROMIUM when set, else the first of the usual names on PATH (Debian's
 * `chromium` package installs /usr/bin/chromium; .ci/run installs it when missing).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];

/** Path of a Chromium executable, or undefined when there is none. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = env.CHROMIUM ? [env.CHROMIUM] : (env.PATH ?? '').split(delimiter).filter(Boolean).flatMap((dir) => NAMES.map((n) => join(dir, n)));
  return candidates.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Why the browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return findChromium() ? undefined : 'no Chromium executable (set CHROMIUM, or apt-get install chromium as .ci/run does)';
}

export function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(chromiumMissing());
  // playwright starts Chromium without its sandbox unless asked (CI runs as root, where it would
  // refuse); a container's small /dev/shm would crash the renderer.
  return chromium.launch({ executablePath, headless: true, args: ['--disable-dev-shm-usage'] });
}
