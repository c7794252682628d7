// The API server's storage: a narrow interface (get/list/create/update/delete with
// resourceVersion, and the ordered stream of changes) so that a distributed store such as etcd
// could sit behind it later, and its embedded implementation on SQLite (better-sqlite3, WAL).
//
// One global revision counter numbers every write, like etcd's revision; an object's
// resourceVersion is the revision of its last write. The SQLite implementation keeps every
// object in memory too (parsed and serialized), so reads and lists never touch the disk; the
// database is written through on every change, in the same transaction as the revision.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { KObject } from "./types.ts";

/** An object as stored. Never mutate `obj`: it is shared by every reader; clone it first. */
export interface StoredObject<T extends KObject = KObject> {
  readonly obj: T;
  readonly json: string;
  readonly rv: number;
}

export interface StorageEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  resource: string;
  rv: number;
  /** The new object; for DELETED, the last state stamped with the deletion's revision. */
  object: StoredObject;
  prev?: StoredObject;
}

export class StorageError extends Error {
  constructor(
    public readonly code: "NotFound" | "AlreadyExists" | "Conflict",
    message: string,
  ) {
    super(message);
  }
}

export interface Storage {
  /** The revision of the last write. */
  revision(): number;
  get(resource: string, namespace: string, name: string): StoredObject | undefined;
  /** Objects of a resource, in one namespace or (namespace undefined) all of them. */
  list(resource: string, namespace?: string): StoredObject[];
  count(resource: string): number;
  /** Stores a new object; sets metadata.resourceVersion. */
  create(resource: string, obj: KObject): StoredObject;
  /** Replaces an object; with expectedRV, fails with Conflict unless it is the stored version. */
  update(resource: string, obj: KObject, expectedRV?: number): StoredObject;
  delete(resource: string, namespace: string, name: string, expectedRV?: number): StoredObject;
  /** Every change, in revision order, called synchronously after it is durable. */
  subscribe(fn: (ev: StorageEvent) => void): () => void;
  close(): void;
}

const nsOf = (o: KObject) => o.metadata.namespace ?? "";

export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly objects = new Map<string, Map<string, Map<string, StoredObject>>>();
  private readonly counts = new Map<string, number>();
  private rev = 0;
  private readonly listeners = new Set<(ev: StorageEvent) => void>();
  private readonly stmts: {
    upsert: Database.Statement;
    del: Database.Statement;
    setRev: Database.Statement;
  };
  private readonly writeTx: (fn: () => void) => void;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(stateDir, "apiserver.db"));
    this.db.pragma("journal_mode = WAL");
    // NORMAL with WAL: every commit survives a crash of the process; only an OS crash can lose
    // the last commits. That is the durability the emulated cluster needs.
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
        rv INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    this.stmts = {
      upsert: this.db.prepare("INSERT OR REPLACE INTO objects (resource, namespace, name, rv, data) VALUES (?, ?, ?, ?, ?)"),
      del: this.db.prepare("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
      setRev: this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)"),
    };
    this.writeTx = this.db.transaction((fn: () => void) => fn());
    this.load();
  }

  private load(): void {
    const metaRev = this.db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: string } | undefined;
    let rev = metaRev ? Number(metaRev.value) : 0;
    const rows = this.db.prepare("SELECT resource, namespace, name, rv, data FROM objects").iterate() as Iterable<{
      resource: string;
      namespace: string;
      name: string;
      rv: number;
      data: string;
    }>;
    for (const row of rows) {
      const obj = JSON.parse(row.data) as KObject;
      this.put(row.resource, row.namespace, row.name, { obj, json: row.data, rv: row.rv });
      if (row.rv > rev) rev = row.rv;
    }
    this.rev = rev;
  }

  private bucket(resource: string, namespace: string, create: boolean): Map<string, StoredObject> | undefined {
    let byNs = this.objects.get(resource);
    if (!byNs) {
      if (!create) return undefined;
      byNs = new Map();
      this.objects.set(resource, byNs);
    }
    let b = byNs.get(namespace);
    if (!b && create) {
      b = new Map();
      byNs.set(namespace, b);
    }
    return b;
  }

  private put(resource: string, namespace: string, name: string, s: StoredObject): void {
    const b = this.bucket(resource, namespace, true)!;
    if (!b.has(name)) this.counts.set(resource, (this.counts.get(resource) ?? 0) + 1);
    b.set(name, s);
  }

  private remove(resource: string, namespace: string, name: string): void {
    const b = this.bucket(resource, namespace, false);
    if (b?.delete(name)) {
      this.counts.set(resource, (this.counts.get(resource) ?? 1) - 1);
      if (b.size === 0) this.objects.get(resource)!.delete(namespace);
    }
  }

  revision(): number {
    return this.rev;
  }

  get(resource: string, namespace: string, name: string): StoredObject | undefined {
    return this.bucket(resource, namespace, false)?.get(name);
  }

  list(resource: string, namespace?: string): StoredObject[] {
    const byNs = this.objects.get(resource);
    if (!byNs) return [];
    if (namespace !== undefined) return [...(byNs.get(namespace)?.values() ?? [])];
    const out: StoredObject[] = [];
    for (const b of byNs.values()) for (const s of b.values()) out.push(s);
    return out;
  }

  count(resource: string): number {
    return this.counts.get(resource) ?? 0;
  }

  private write(resource: string, obj: KObject, type: "ADDED" | "MODIFIED", prev?: StoredObject): StoredObject {
    const rv = this.rev + 1;
    obj.metadata.resourceVersion = String(rv);
    const json = JSON.stringify(obj);
    const ns = nsOf(obj);
    const name = obj.metadata.name!;
    this.writeTx(() => {
      this.stmts.upsert.run(resource, ns, name, rv, json);
      this.stmts.setRev.run(String(rv));
    });
    this.rev = rv;
    const stored: StoredObject = { obj, json, rv };
    this.put(resource, ns, name, stored);
    this.emit({ type, resource, rv, object: stored, prev });
    return stored;
  }

  create(resource: string, obj: KObject): StoredObject {
    const ns = nsOf(obj);
    const name = obj.metadata.name!;
    if (this.get(resource, ns, name)) throw new StorageError("AlreadyExists", `${resource} ${ns}/${name} already exists`);
    return this.write(resource, obj, "ADDED");
  }

  update(resource: string, obj: KObject, expectedRV?: number): StoredObject {
    const ns = nsOf(obj);
    const name = obj.metadata.name!;
    const prev = this.get(resource, ns, name);
    if (!prev) throw new StorageError("NotFound", `${resource} ${ns}/${name} not found`);
    if (expectedRV !== undefined && prev.rv !== expectedRV) throw new StorageError("Conflict", `${resource} ${ns}/${name} changed`);
    return this.write(resource, obj, "MODIFIED", prev);
  }

  delete(resource: string, namespace: string, name: string, expectedRV?: number): StoredObject {
    const prev = this.get(resource, namespace, name);
    if (!prev) throw new StorageError("NotFound", `${resource} ${namespace}/${name} not found`);
    if (expectedRV !== undefined && prev.rv !== expectedRV) throw new StorageError("Conflict", `${resource} ${namespace}/${name} changed`);
    const rv = this.rev + 1;
    this.writeTx(() => {
      this.stmts.del.run(resource, namespace, name);
      this.stmts.setRev.run(String(rv));
    });
    this.rev = rv;
    this.remove(resource, namespace, name);
    // The DELETED event carries the last state, stamped with the deletion's revision.
    const obj = { ...prev.obj, metadata: { ...prev.obj.metadata, resourceVersion: String(rv) } };
    const stored: StoredObject = { obj, json: JSON.stringify(obj), rv };
    this.emit({ type: "DELETED", resource, rv, object: stored, prev });
    return stored;
  }

  subscribe(fn: (ev: StorageEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(ev: StorageEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(ev);
      } catch (e) {
        process.stderr.write(`apiserver: storage listener failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      }
    }
  }

  close(): void {
    if (this.db.open) {
      try {
        this.db.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        /* another reader; the WAL is replayed at next open anyway */
      }
      this.db.close();
    }
  }
}
