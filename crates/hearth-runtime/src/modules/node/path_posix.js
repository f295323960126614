import path from 'node:path';
export * from 'node:path';
export default path;
export { path as 'module.exports' };
