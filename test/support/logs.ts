/** A logger that keeps its lines, to assert on what was (and was not) logged. */
import { createLogger, type Logger } from '../../functions/adapters/logger';

export function captureLogger(): { logger: Logger; lines: string[]; text(): string } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => lines.push(line) });
  return { logger, lines, text: () => lines.join('\n') };
}
