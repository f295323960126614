import { strict } from 'node:assert';
export * from 'node:assert';
export default strict;
export { strict as 'module.exports' };
