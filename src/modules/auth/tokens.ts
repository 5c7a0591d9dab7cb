// The credentials' format lives with the caller lookup it serves (http/credentials.ts).
export { hashToken, newToken } from '../../http/credentials.ts';
