/**
 * Types for the small part of `oidc-provider` (v9, ships no types) that the sandbox uses.
 * Only `infra/local/sandbox/*.mts` import the package; nothing else in the project should.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

  /** The Koa context as the sandbox middleware sees it (Provider is a Koa app since v9). */
  export interface KoaContext {
    readonly method: string;
    readonly path: string;
    readonly req: IncomingMessage;
    readonly res: ServerResponse;
    /** Koa's request; oidc-provider parses `body` when an earlier middleware consumed the stream. */
    readonly request: { body?: unknown };
    status: number;
    body: unknown;
    type: string;
    respond: boolean;
    get(field: string): string;
    set(field: string, value: string): void;
    redirect(url: string): void;
    /** Set by oidc-provider on its own routes once they ran. */
    readonly oidc?: { readonly params?: Record<string, unknown> };
  }

  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface Interaction {
    readonly uid: string;
    readonly prompt: { readonly name: string; readonly details: Record<string, unknown> };
    readonly params: Record<string, unknown>;
    readonly session?: { readonly accountId: string };
    readonly grantId?: string;
  }

  export type InteractionResult =
    { login: { accountId: string } } | { consent: { grantId: string } } | { error: string; error_description?: string };

  export interface AccessToken {
    readonly accountId: string;
    readonly scopes: Set<string>;
  }

  export class Grant {
    constructor(properties: { accountId: string; clientId: string });
    static find(id: string): Promise<Grant | undefined>;
    addOIDCScope(scope: string): void;
    save(): Promise<string>;
    destroy(): Promise<void>;
  }

  /** Model classes whose tokens can be revoked as a whole grant. */
  export interface GrantBoundModel {
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    readonly issuer: string;
    readonly Grant: typeof Grant;
    readonly AccessToken: GrantBoundModel & { find(value: string): Promise<AccessToken | undefined> };
    readonly RefreshToken: GrantBoundModel & { find(value: string): Promise<{ grantId: string } | undefined> };
    readonly AuthorizationCode: GrantBoundModel;
    use(middleware: Middleware): this;
    callback(): RequestListener;
    on(event: string, listener: (...args: unknown[]) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionResult(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResult,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<string>;
  }
}
