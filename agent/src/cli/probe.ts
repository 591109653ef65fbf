import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { PROFILES } from '../core/profiles.js';
import { ManualClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { buildRig } from '../hw/emulated/rig.js';
import { hex, openI2cBus, type I2cBus } from '../hw/i2c.js';
import { configSnippet, probeBus } from '../hw/probe.js';
import { MotorSimulator } from '../motor/simulator.js';

export const probeCommand: Command = {
  name: 'probe',
  summary: 'scan an I2C bus, identify the sensor chips by their ID registers, print a config snippet',
  usage: `usage: anomaly-agent probe [--bus N] [--sim]

Scans /dev/i2c-N (addresses 0x03..0x77, as i2cdetect), reads the identity registers of every part
that answers — ADXL345 (DEVID), MCP9808 (manufacturer and device ID), ADS1115 (threshold registers'
reset values; it has no ID register), TMP117 (device ID; no driver here) — and prints what it found
and the hardware.* settings for a config file. Reads only: nothing is configured.

options:
  --bus N   I2C bus number (default ${DEFAULTS.cli.probe.bus}, hardware.i2cBus's; 1 is the Raspberry Pi's header pins 3 and 5)
  --sim     probe the emulated rig the sim source uses instead (no hardware needed)
`,
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: { bus: { type: 'string' }, sim: { type: 'boolean' } }, allowPositionals: false });
    const busNumber = values.bus === undefined ? DEFAULTS.cli.probe.bus : Number(values.bus);
    if (!Number.isInteger(busNumber) || busNumber < 0) throw new UsageError(`--bus must be an integer >= 0, got '${values.bus}'`);
    let bus: I2cBus;
    let where: string;
    if (values.sim) {
      const clock = new ManualClock(Date.now());
      bus = buildRig({ motor: new MotorSimulator({ profile: PROFILES[DEFAULTS.config.models.profile], seed: DEFAULTS.config.source.sim.seed, startMs: clock.now() }), clock }).bus;
      where = 'the emulated rig (sim source)';
    } else {
      bus = await openI2cBus(busNumber);
      where = `/dev/i2c-${busNumber}`;
    }
    try {
      const found = await probeBus(bus);
      io.out(`${where}: ${found.length} address${found.length === 1 ? '' : 'es'} answer${found.length === 1 ? 's' : ''}`);
      for (const f of found) io.out(`  ${hex(f.address)}  ${(f.part ?? '?').padEnd(8)} ${f.detail}${f.part && !f.supported ? ' (no driver in this agent)' : ''}`);
      const known = found.filter((f) => f.supported);
      if (known.length === 0) {
        io.out('no supported part found; check the wiring (README: Wiring) and that I2C is enabled');
        return 1;
      }
      io.out('');
      io.out('config (anomaly-agent run --config FILE); the rpm pickup is on a GPIO pin, not on the bus: set hardware.rpm.gpio');
      io.out(JSON.stringify(configSnippet(found, busNumber), null, 2));
      return 0;
    } finally {
      await bus.close();
    }
  },
};
