import { Injectable } from "./di";

/** A user as stored. */
export interface User {
  id: string;
  name: string;
}

@Injectable()
export class UserService {
  private cache = new Map<string, User>();

  /**
   * Find a user by id.
   */
  @Memoize()
  async find(id: string): Promise<User | undefined> {
    return this.cache.get(id);
  }

  save = (user: User): void => {
    this.cache.set(user.id, user);
  };
}

export enum Role {
  Admin,
  Guest,
}

namespace Util {
  export function slug(text: string): string {
    return text.toLowerCase().replace(/\s+/g, "-");
  }
}

const greet = function (name: string): string {
  return `héllo ${name}`;
};
