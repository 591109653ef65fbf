// i2c-bus ships no types; hw/i2c.ts only needs to know the module exists (it types the bus itself).
declare module 'i2c-bus';
