import { get } from "./http.js";

/**
 * Fetch one user by id.
 * @param {string} id
 */
export const fetchUser = async (id) => {
  const response = await get(`/users/${id}`);
  return response.json();
};

// Caches results in memory.
class Cache {
  #store = new Map();

  constructor(limit) {
    this.limit = limit;
  }

  /** Look a key up. */
  get(key) {
    return this.#store.get(key);
  }

  clear = () => {
    this.#store.clear();
  };
}

function outer(items) {
  function inner(item) {
    return item * 2;
  }
  return items.map(inner);
}

const helpers = {
  double(x) {
    return x * 2;
  },
  triple: function (x) {
    return x * 3;
  },
};

module.exports.handler = function (event) {
  return outer(event.items);
};
