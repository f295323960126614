// node:fs/promises — the promise form of node:fs.
import { promises } from 'node:fs';

export const {
  readFile, writeFile, appendFile, access, stat, lstat, readdir, mkdir, mkdtemp, unlink, rmdir, rm, rename,
  copyFile, cp, symlink, readlink, realpath, truncate, utimes, lutimes, chmod, lchmod, chown, lchown, opendir,
  open, watch, glob, constants,
} = promises;
export default promises;
export { promises as 'module.exports' };
