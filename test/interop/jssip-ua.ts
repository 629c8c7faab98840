// A JsSIP user agent on the command line, for trying a running Parley by hand or from a script:
// registers over WebSocket, optionally sends MESSAGEs, optionally waits for some, unregisters.
// Prints one JSON object per line on stdout; exits 0 when everything asked for succeeded.
//
//   node test/interop/jssip-ua.ts --ws ws://127.0.0.1:8080/sip --uri sip:alice@parley.test \
//        --password secret [--display-name Alice] [--send sip:bob@parley.test --text "hi"] \
//        [--receive 1] [--timeout 10]
//
// --send may be repeated (each with the same --text). The library side is test/harness/jssip.ts.
import { parseArgs } from 'node:util';
import { startJsSipUser } from '../harness/jssip.ts';

const USAGE =
  'usage: node test/interop/jssip-ua.ts --ws URL --uri SIP-URI --password PW [--display-name NAME]\n' +
  '         [--send TARGET ... --text TEXT] [--receive N] [--timeout SECONDS]\n';

function emit(event: string, data: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        ws: { type: 'string' },
        uri: { type: 'string' },
        password: { type: 'string' },
        'display-name': { type: 'string' },
        send: { type: 'string', multiple: true },
        text: { type: 'string', default: 'Hello from JsSIP' },
        receive: { type: 'string', default: '0' },
        timeout: { type: 'string', default: '10' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.ws || !values.uri || values.password === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const timeoutMs = Number(values.timeout) * 1000;
  const receive = Number(values.receive);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || !Number.isInteger(receive) || receive < 0) {
    process.stderr.write(`--timeout must be > 0 and --receive an integer >= 0\n${USAGE}`);
    return 2;
  }

  let user;
  try {
    user = await startJsSipUser({
      wsUrl: values.ws,
      uri: values.uri,
      password: values.password,
      registerTimeoutMs: timeoutMs,
      ...(values['display-name'] !== undefined ? { displayName: values['display-name'] } : {}),
    });
  } catch (err) {
    emit('registration-failed', { error: (err as Error).message });
    return 1;
  }
  emit('registered', { uri: values.uri });

  let ok = true;
  try {
    const waiting = Array.from({ length: receive }, () => user.nextMessage(timeoutMs));
    // keep rejections of later waits from surfacing before we get to them
    for (const w of waiting) w.catch(() => {});
    for (const target of values.send ?? []) {
      const r = await user.sendMessage(target, values.text);
      emit('sent', { target, ...r });
      if (r.status < 200 || r.status > 299) ok = false;
    }
    for (const w of waiting) {
      try {
        const m = await w;
        emit('message', { ...m });
      } catch (err) {
        emit('receive-failed', { error: (err as Error).message });
        ok = false;
      }
    }
  } finally {
    await user.stop();
    emit('stopped');
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
