// node:path/posix and node:path/win32: the same POSIX path module.
import path from 'node:path';
export * from 'node:path';
export default path;
export { path as 'module.exports' };
