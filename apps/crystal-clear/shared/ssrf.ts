// Which webhook URLs the event bus may call. A URL naming a private,
// loopback, link-local or otherwise non-public address is refused unless
// the deployment lists that exact host in WEBHOOK_ALLOW_HOSTS (for tests
// and private installations, e.g. "127.0.0.1").
//
// Only literal addresses and well-known local names can be judged here: a
// Worker has no DNS API, so a public name that resolves to a private
// address is not caught (on Cloudflare, fetch() cannot reach private
// networks anyway; on a self-hosted runtime, put an egress proxy in front).

export function webhookUrlProblem(raw: string, allowHosts: string[]): string | null {
  if (raw.length > 2048) return "at most 2048 characters";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "not a valid absolute URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must use http or https";
  if (url.username || url.password) return "must not contain credentials";
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (allowHosts.includes(host)) return null;
  if (host.startsWith("[")) {
    return ipv6Private(host.slice(1, -1)) ? `${host} is a private, loopback or link-local address` : null;
  }
  const v4 = parseV4(host);
  if (v4) return ipv4Private(v4) ? `${host} is a private, loopback or link-local address` : null;
  if (!host.includes(".")) return `${host} is not a public host name`;
  for (const suffix of [".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet"]) {
    if (host === suffix.slice(1) || host.endsWith(suffix)) return `${host} is a local host name`;
  }
  return null;
}

function parseV4(host: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : null;
}

function ipv4Private([a, b, c]: number[]): boolean {
  return (
    a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && (c === 0 || c === 2)) ||
    (a === 198 && (b === 18 || b === 19)) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113)
  );
}

function ipv6Private(addr: string): boolean {
  const groups = expandV6(addr);
  if (!groups) return true; // unparseable: refuse
  const [g0, , , , , g5, g6, g7] = groups;
  if (groups.every((g) => g === 0)) return true; // ::
  if (groups.slice(0, 7).every((g) => g === 0) && g7 === 1) return true; // ::1
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::/96): judge the IPv4 part.
  if (groups.slice(0, 5).every((g) => g === 0) && g5 === 0xffff) return ipv4Private([g6 >> 8, g6 & 255, g7 >> 8, g7 & 255]);
  if (g0 === 0x64 && groups[1] === 0xff9b) return ipv4Private([g6 >> 8, g6 & 255, g7 >> 8, g7 & 255]);
  if ((g0 & 0xfe00) === 0xfc00) return true; // unique local fc00::/7
  if ((g0 & 0xffc0) === 0xfe80) return true; // link-local fe80::/10
  if ((g0 & 0xff00) === 0xff00) return true; // multicast
  if (g0 === 0x2001 && groups[1] === 0x0db8) return true; // documentation
  return false;
}

function expandV6(addr: string): number[] | null {
  let text = addr.split("%")[0];
  // A trailing dotted IPv4 part becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = parseV4(dotted[1]);
    if (!v4) return null;
    text = text.slice(0, -dotted[1].length) + `${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return null;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const out = all.map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN));
  return out.some(Number.isNaN) ? null : out;
}
