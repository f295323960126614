// Helpers the node:* modules share: how Node words the value an argument
// check received ("Received type number (5)", "Received an instance of
// Foo", "Received function f", "Received null").

function short(value) {
  let s;
  if (typeof value === 'string') s = "'" + value.replace(/'/g, "\\'") + "'";
  else if (typeof value === 'bigint') s = value + 'n';
  else if (typeof value === 'symbol') s = value.toString();
  else if (Object.is(value, -0)) s = '-0';
  else s = String(value);
  return s.length > 28 ? s.slice(0, 25) + '...' : s;
}

// The working directory, shared by process.cwd()/chdir() and node:fs's
// relative paths; workerd starts it at /bundle.
export const workingDirectory = { path: '/bundle' };

export function received(value) {
  if (value === null || value === undefined) return ' Received ' + value;
  if (typeof value === 'function') return ' Received function ' + (value.name || '<anonymous>');
  if (typeof value === 'object') {
    const ctor = Object.getPrototypeOf(value)?.constructor;
    if (ctor && ctor.name) return ' Received an instance of ' + ctor.name;
    return ' Received ' + short(Object.prototype.toString.call(value));
  }
  return ' Received type ' + typeof value + ' (' + short(value) + ')';
}
