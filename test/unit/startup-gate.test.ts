/**
 * The local server's startup gate (issue 12, point 7): it listens before its handlers exist, and a
 * request arriving meanwhile must get an answer at once, not hang until the client gives up.
 */
import { createServer, type Server } from 'node:http';
import { createRouter, createStartupGate } from '../../infra/local/http-adapter';

let server: Server;
let base: string;
const gate = createStartupGate();

beforeAll(async () => {
  server = createServer(gate.listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('Function: createStartupGate', () => {
  it('answers 503 "starting" with Retry-After at once while the handlers are not attached', async () => {
    // Any route, any method: nothing is routed yet, and nothing may hang.
    const responses = await Promise.all([
      fetch(`${base}/login`, { signal: AbortSignal.timeout(2000) }),
      fetch(`${base}/callback?code=c&state=s`, { signal: AbortSignal.timeout(2000) }),
      fetch(`${base}/login`, { method: 'POST', body: 'x'.repeat(100_000), signal: AbortSignal.timeout(2000) }),
    ]);

    for (const response of responses) {
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await response.text()).toBe('starting');
    }
  });

  it('hands every later request to the listener it is opened with', async () => {
    gate.open(
      createRouter({ '/login': async () => ({ statusCode: 302, headers: { location: 'https://x.test/' }, body: '' }) }),
    );

    const login = await fetch(`${base}/login`, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
    const unknown = await fetch(`${base}/nope`, { signal: AbortSignal.timeout(2000) });

    expect(login.status).toBe(302);
    expect(login.headers.get('location')).toBe('https://x.test/');
    expect(unknown.status).toBe(404);
  });
});
