import './uses.js';
import fs, { readFileSync, writeFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

async function run() {
  // /bundle holds the worker's modules, read-only.
  eq('bundle lists the main module', readdirSync('/bundle').includes('index.js'), true);
  eq('bundle file contents', readFileSync('/bundle/index.js', 'utf8').includes("import fs, { readFileSync"), true);
  eq('bundle data module', JSON.parse(readFileSync('/bundle/data/config.json', 'utf8')), { value: 42 });
  eq('bundle stat', [statSync('/bundle/data').isDirectory(), statSync('/bundle/data/config.json').isFile()], [true, true]);
  throwsLike('bundle is read-only', () => writeFileSync('/bundle/index.js', 'x'), { code: 'EPERM', syscall: 'open' });
  throwsLike('no new files in bundle', () => writeFileSync('/bundle/new.txt', 'x'), { code: 'EPERM' });
  throwsLike('files the worker never loaded are not there', () => readFileSync('/bundle/secret.txt'), { code: 'ENOENT', message: "ENOENT: no such file or directory, open '/bundle/secret.txt'", errno: -2, path: '/bundle/secret.txt' });
  eq('root', readdirSync('/'), ['bundle', 'dev', 'tmp']);

  // /tmp is writable.
  writeFileSync('/tmp/a.txt', 'hello');
  fs.appendFileSync('/tmp/a.txt', ' world');
  eq('write, append, read', readFileSync('/tmp/a.txt', 'utf8'), 'hello world');
  eq('read as Buffer', Buffer.isBuffer(readFileSync('/tmp/a.txt')), true);
  eq('relative paths resolve from the working directory, /bundle', readFileSync('../tmp/a.txt', { encoding: 'utf8' }), 'hello world');
  eq('stat size', statSync('/tmp/a.txt').size, 11);
  throwsLike('wx on an existing file', () => writeFileSync('/tmp/a.txt', 'x', { flag: 'wx' }), { code: 'EEXIST' });
  mkdirSync('/tmp/d/e/f', { recursive: true });
  writeFileSync('/tmp/d/e/f/g.txt', 'deep');
  eq('recursive readdir', readdirSync('/tmp/d', { recursive: true }), ['e', 'e/f', 'e/f/g.txt']);
  eq('withFileTypes', readdirSync('/tmp/d/e', { withFileTypes: true }).map((d) => [d.name, d.isDirectory(), d.parentPath]), [['f', true, '/tmp/d/e']]);
  throwsLike('mkdir existing', () => mkdirSync('/tmp/d'), { code: 'EEXIST' });
  throwsLike('mkdir without parent', () => mkdirSync('/tmp/x/y'), { code: 'ENOENT' });
  throwsLike('readdir of a file', () => readdirSync('/tmp/a.txt'), { code: 'ENOTDIR' });
  throwsLike('read a directory', () => readFileSync('/tmp/d'), { code: 'EISDIR' });
  throwsLike('rmdir non-empty', () => fs.rmdirSync('/tmp/d'), { code: 'ENOTEMPTY' });
  throwsLike('rm a directory without recursive', () => fs.rmSync('/tmp/d'), { code: 'ERR_FS_EISDIR' });
  fs.renameSync('/tmp/d/e/f/g.txt', '/tmp/g.txt');
  fs.copyFileSync('/tmp/g.txt', '/tmp/h.txt');
  throwsLike('copy over with COPYFILE_EXCL', () => fs.copyFileSync('/tmp/g.txt', '/tmp/h.txt', fs.constants.COPYFILE_EXCL), { code: 'EEXIST' });
  fs.symlinkSync('/tmp/g.txt', '/tmp/link');
  eq('rename, copy, symlink', [readFileSync('/tmp/h.txt', 'utf8'), readFileSync('/tmp/link', 'utf8'), fs.readlinkSync('/tmp/link'), fs.lstatSync('/tmp/link').isSymbolicLink(), fs.realpathSync('/tmp/link')], ['deep', 'deep', '/tmp/g.txt', true, '/tmp/g.txt']);
  fs.rmSync('/tmp/d', { recursive: true });
  fs.unlinkSync('/tmp/h.txt');
  eq('removed', [existsSync('/tmp/d'), existsSync('/tmp/h.txt'), existsSync('/tmp/g.txt')], [false, false, true]);
  fs.rmSync('/tmp/nothing', { force: true });
  const dir = fs.mkdtempSync('/tmp/job-');
  eq('mkdtemp', [dir.startsWith('/tmp/job-'), dir.length, statSync(dir).isDirectory()], [true, 15, true]);
  eq('throwIfNoEntry', statSync('/tmp/none', { throwIfNoEntry: false }), undefined);

  // File descriptors.
  const fd = fs.openSync('/tmp/fd.bin', 'w+');
  fs.writeSync(fd, Buffer.from('abcdef'));
  fs.writeSync(fd, 'XY', 2);
  const buf = Buffer.alloc(4);
  eq('pwrite then pread', [fs.readSync(fd, buf, 0, 4, 0), buf.toString()], [4, 'abXY']);
  eq('fstat', fs.fstatSync(fd).size, 6);
  fs.closeSync(fd);
  throwsLike('closed fd', () => fs.fstatSync(fd), { code: 'EBADF' });
  throwsLike('open missing for reading', () => fs.openSync('/tmp/missing'), { code: 'ENOENT' });

  // /dev.
  eq('dev/null', readFileSync('/dev/null').length, 0);
  const z = fs.openSync('/dev/zero', 'r');
  const zb = Buffer.alloc(8, 1);
  fs.readSync(z, zb, 0, 8, null);
  const r = fs.openSync('/dev/random', 'r');
  const rb = Buffer.alloc(32);
  fs.readSync(r, rb, 0, 32, null);
  eq('dev/zero and dev/random', [zb.every((b) => b === 0), rb.some((b) => b !== 0)], [true, true]);
  writeFileSync('/dev/null', 'discarded');
  eq('writes to devices are discarded', readFileSync('/dev/null').length, 0);

  // Callback and promise forms.
  eq('callback readFile', await new Promise((res) => fs.readFile('/tmp/a.txt', 'utf8', (e, d) => res([e, d]))), [null, 'hello world']);
  eq('callback error', await new Promise((res) => fs.stat('/tmp/none', (e) => res(e.code))), 'ENOENT');
  await fsp.writeFile('/tmp/p.txt', 'promised');
  eq('promises', [await fsp.readFile('/tmp/p.txt', 'utf8'), (await fsp.stat('/tmp/p.txt')).size, (await fsp.readdir('/tmp')).includes('p.txt')], ['promised', 8, true]);
  await fsp.access('/tmp/p.txt');
  eq('promise rejection', await fsp.access('/bundle/index.js', fs.constants.W_OK).then(() => 'ok', (e) => e.code), 'EACCES');
  const fh = await fsp.open('/tmp/p.txt', 'r+');
  await fh.write('P', 0);
  eq('FileHandle', [await fh.readFile('utf8'), (await fh.stat()).size], ['Promised', 8]);
  await fh.close();

  // Streams.
  await pipeline(fs.createReadStream('/tmp/a.txt', { highWaterMark: 3 }), fs.createWriteStream('/tmp/copy.txt'));
  eq('read stream piped to write stream', readFileSync('/tmp/copy.txt', 'utf8'), 'hello world');
  const part = [];
  for await (const c of fs.createReadStream('/tmp/a.txt', { start: 6, end: 8 })) part.push(c.toString());
  eq('read stream range', part.join(''), 'wor');
  const missing = fs.createReadStream('/tmp/none');
  eq('read stream error', await new Promise((res) => missing.on('error', (e) => res(e.code))), 'ENOENT');
  throwsLike('watch is not in workers', () => fs.watch('/tmp'), { code: 'ERR_METHOD_NOT_IMPLEMENTED' });
}
