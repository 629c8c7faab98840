// The "client host" of test/e2e/addresses.test.ts: run in another network namespace, reaching the
// server over a veth pair. Prints one JSON line with what the server told it:
//   node test/e2e/addresses-client.ts SERVER-IP SIP-PORT HTTP-PORT ADDRESS PASSWORD
// → {"tcpEwsUrl": "…", "udpEwsUrl": "…", "cspForeignHost": "…"}
import http from 'node:http';
import { SipClient, type ProvisioningSettings } from '../../src/client/index.ts';
import { udpConnector } from '../harness/udp-connector.ts';

const [host = '', sipPort = '', httpPort = '', address = '', password = ''] = process.argv.slice(2);

async function provisioned(over: 'tcp' | 'udp'): Promise<string> {
  const client = new SipClient({
    server: `tcp://${host}:${sipPort}`,
    aor: `sip:${address}`,
    password,
    requestTimeoutMs: 5000,
    keepAliveIntervalMs: 0,
    ...(over === 'udp' ? { connector: udpConnector() } : {}),
  });
  const settings = new Promise<ProvisioningSettings>((resolve) => client.on('provisioning', resolve));
  await client.connect();
  await client.register({ expires: 60 });
  await client.watchProvisioning();
  const { ewsUrl } = await settings;
  await client.close();
  return ewsUrl;
}

function csp(hostHeader: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(httpPort), path: '/', method: 'HEAD', setHost: false, headers: { host: hostHeader } }, (res) => {
      res.resume();
      resolve(String(res.headers['content-security-policy'] ?? ''));
    });
    req.on('error', reject);
    req.end();
  });
}

const tcp = await provisioned('tcp');
const udp = await provisioned('udp');
console.log(JSON.stringify({ tcpEwsUrl: tcp, udpEwsUrl: udp, cspForeignHost: await csp('evil.example') }));
