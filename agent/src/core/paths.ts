import { fileURLToPath } from 'node:url';

/**
 * The installed package's root (compiled code lives in dist/agent/src/…): where the shipped models/
 * and datas/ are, wherever the process was started from.
 */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
