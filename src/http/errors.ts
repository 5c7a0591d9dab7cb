/**
 * Moved to src/shared/errors.ts (errors are shared by every layer, db included). This re-export keeps
 * src/http/auth.ts and src/modules/{auth,lessons} compiling until they import the shared module;
 * then delete it.
 */
export * from '../shared/errors.ts';
