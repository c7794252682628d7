export const ROOT: string;
/** The Bun binary under node_modules; throws when npm ci has not installed one. */
export function findBun(root?: string): string;
