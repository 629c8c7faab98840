// A raw RFC 5321 client in another process, as a partner organisation's mail server would be:
// it sends each command after the previous reply and resolves with every reply code in order.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const CLIENT = `
const net = require('node:net');
const [host, port, ...commands] = JSON.parse(process.argv[1]);
const socket = net.connect(port, host);
let buffer = '', codes = [], queue = [...commands];
socket.on('data', (d) => {
  buffer += d;
  let m;
  while ((m = /^(\\d{3}) .*\\r\\n/m.exec(buffer))) {
    codes.push(Number(m[1]));
    buffer = buffer.slice(m.index + m[0].length);
    const next = queue.shift();
    if (next === undefined) { socket.end(); continue; }
    socket.write(next + '\\r\\n');
  }
});
socket.on('close', () => console.log(JSON.stringify(codes)));
`;

export async function smtpDialogue(host: string, port: number, ...commands: string[]): Promise<number[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', CLIENT, JSON.stringify([host, port, ...commands])]);
  return JSON.parse(stdout) as number[];
}
