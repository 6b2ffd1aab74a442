/**
 * docs/connect.md shows the app backend of examples/connect-app.ts, which the browser test runs:
 * the page must show that file as it is (with the package name in its import), so the example a
 * reader copies is the one that was tested.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

describe('Docs: docs/connect.md', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'connect.md'), 'utf8');

  it('shows examples/connect-app.ts verbatim, importing the package', () => {
    const marker = doc.indexOf('<!-- example: examples/connect-app.ts -->');
    expect(marker).toBeGreaterThan(0);
    const start = doc.indexOf('```ts\n', marker) + '```ts\n'.length;
    const shown = doc.slice(start, doc.indexOf('```\n', start));
    const file = fs.readFileSync(path.join(ROOT, 'examples', 'connect-app.ts'), 'utf8');
    expect(shown).toBe(file.replace("from '../functions/reader';", "from 'kroger-token-broker';"));
  });

  it('has the sequence as a Mermaid diagram, the attack, and the fixed contract names', () => {
    expect(doc).toContain('```mermaid\nsequenceDiagram');
    expect(doc).toMatch(/## The attack this closes/);
    for (const name of [
      'connect_code',
      'completeConnection(connectCode, appUserId)',
      'npm run tokens -- complete',
      'PUBLIC_LOGIN',
      'publicLogin',
      'APP_NAME',
    ]) {
      expect(doc).toContain(name);
    }
  });
});
