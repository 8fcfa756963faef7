import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DataSource, type EntityMetadata } from 'typeorm';

/**
 * What a violated constraint means to a client: the input field it concerns and the error's message.
 * A unique violation is a ConflictError, a missing reference a MissingReferenceError, or a
 * NotFoundError when `notFound` is set: the referenced row is the one the request addresses (the
 * parent named by the path, e.g. the post of `/posts/{postId}/comments`), not a value of its input.
 */
export interface ConstraintProblem {
  field: string;
  detail: string;
  notFound?: boolean;
}

/** A feature's map from constraint name (as named in its entity and migration) to problem. */
export type ConstraintProblems = Readonly<Record<string, ConstraintProblem>>;

/** Entries the features declared (their `<feature>.constraints.ts`), and entries derived from entity metadata. */
const declared = new Map<string, ConstraintProblem>();
const derived = new Map<string, ConstraintProblem>();

/**
 * Registers a feature's constraint map; its module does this once at startup. Registering the same
 * entry again is a no-op; a name claimed with a different meaning throws (two features disagree).
 */
export function registerConstraintProblems(problems: ConstraintProblems): void {
  for (const [name, problem] of Object.entries(problems)) {
    const existing = declared.get(name);
    if (existing && existing !== problem) throw new Error(`constraint ${name} is registered twice`);
    declared.set(name, problem);
  }
}

/**
 * Derives a problem for every foreign key the entities declare: a missing reference naming the referencing property
 * (e.g. `authorId`) and the referenced entity. A feature's declared entry for the same name wins.
 */
export function registerForeignKeys(metadatas: readonly EntityMetadata[]): void {
  for (const metadata of metadatas) {
    for (const foreignKey of metadata.foreignKeys) {
      if (!foreignKey.name) continue;
      const field = foreignKey.columns.map((column) => column.propertyName).join(', ');
      const target = foreignKey.referencedEntityMetadata.targetName.toLowerCase();
      derived.set(foreignKey.name, { field, detail: `The referenced ${target} does not exist` });
    }
  }
}

/** The problem registered for a constraint name: a feature's declared one, else one derived from metadata. */
export function constraintProblem(name: string): ConstraintProblem | undefined {
  return declared.get(name) ?? derived.get(name);
}

/** Feeds the DataSource's entity metadata to registerForeignKeys once the app's modules are built. */
@Injectable()
export class ForeignKeyProblems implements OnModuleInit {
  constructor(private readonly dataSource: DataSource) {}

  onModuleInit(): void {
    registerForeignKeys(this.dataSource.entityMetadatas);
  }
}
