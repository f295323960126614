// node:https — node:http's client and server with https: defaults.
import { ClientRequest, Agent, Server, createServer as httpCreateServer } from 'node:http';

export { Agent, Server };
export const globalAgent = new Agent({ keepAlive: true });
export function request(input, options, cb) {
  return new ClientRequest(input, options, cb, 'https:');
}
export function get(input, options, cb) {
  const req = request(input, options, cb);
  req.end();
  return req;
}
export function createServer(options, listener) {
  return httpCreateServer(options, listener);
}
const https = { Agent, Server, globalAgent, request, get, createServer };
export default https;
export { https as 'module.exports' };
