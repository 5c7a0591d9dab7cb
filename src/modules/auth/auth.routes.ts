import { Type } from '@sinclair/typebox';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { forgetCredential, requireCaller, writeSessionCookie } from '../../http/auth.ts';
import { errors, Id, isUuid, UserSchema } from '../../http/schemas.ts';
import { notFound } from '../../shared/errors.ts';
import { presentUser } from '../users/user.presenter.ts';
import { LoginBody, RegisterBody, TokenBody } from './auth.schemas.ts';
import * as service from './auth.service.ts';

const UserResponse = Type.Object({ user: UserSchema });

export function authRoutes(app: TypedApp, { config, database, ipLimits }: AppDeps) {
  const { db } = database;

  app.post(
    '/auth/register',
    {
      schema: {
        tags: ['auth'],
        body: RegisterBody,
        response: { 201: UserResponse, ...errors(400, 409, 429) },
      },
    },
    async (request, reply) => {
      // Counted before the (deliberately slow) password hash: a flood costs us a row update each.
      await ipLimits.registration.consume(request.ip);
      const r = await service.register(db, request.body, config.SESSION_TTL_HOURS);
      writeSessionCookie(reply, {
        token: r.sessionToken,
        expires: r.expiresAt,
        secure: request.protocol === 'https',
      });
      return reply.status(201).send({ user: presentUser(r.user) });
    },
  );

  app.post(
    '/auth/login',
    {
      schema: { tags: ['auth'], body: LoginBody, response: { 200: UserResponse, ...errors(400, 401, 429) } },
    },
    async (request, reply) => {
      const r = await service.login(db, { ...request.body, ip: request.ip }, config.SESSION_TTL_HOURS);
      writeSessionCookie(reply, {
        token: r.sessionToken,
        expires: r.expiresAt,
        secure: request.protocol === 'https',
      });
      return { user: presentUser(r.user) };
    },
  );

  app.post(
    '/auth/logout',
    { schema: { tags: ['auth'], response: errors(401, 403) } },
    async (request, reply) => {
      const caller = await requireCaller(request);
      await service.logout(db, caller);
      if (caller.via === 'session') forgetCredential(request, caller.credentialId);
      writeSessionCookie(reply, null);
      return reply.status(204).send();
    },
  );

  app.get(
    '/me',
    { schema: { tags: ['auth'], response: { 200: UserResponse, ...errors(401) } } },
    async (request) => {
      return { user: presentUser(await requireCaller(request)) };
    },
  );

  app.post(
    '/auth/tokens',
    {
      schema: {
        tags: ['auth'],
        body: TokenBody,
        response: { 201: Type.Object({ token: Type.String(), id: Type.String() }), ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      return reply.status(201).send(await service.createApiToken(db, caller, request.body.name));
    },
  );

  app.delete(
    '/auth/tokens/:id',
    { schema: { tags: ['auth'], params: Type.Object({ id: Id }), response: errors(401, 403, 404) } },
    async (request, reply) => {
      const caller = await requireCaller(request);
      if (!isUuid(request.params.id)) throw notFound('Token');
      await service.deleteApiToken(db, caller, request.params.id);
      forgetCredential(request, request.params.id);
      return reply.status(204).send();
    },
  );
}
