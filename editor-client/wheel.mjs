// Builds the CodeSieve wheel (the Python package with its default model) into wheel/, which the .vsix
// carries: the extension installs it when it sets up its own Python environment. It runs
// `pip wheel --no-deps` on the repository with $PYTHON, else the checkout's .venv Python, else python3.
// When that Python has the build backend (setuptools 69+, in the `dev` extra) the build uses it and needs
// no network; otherwise pip fetches the backend from the package index into an isolated build.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const out = join(here, "wheel");
const venv = join(root, ".venv", process.platform === "win32" ? "Scripts/python.exe" : "bin/python");
const python = process.env.PYTHON || (existsSync(venv) ? venv : process.platform === "win32" ? "python" : "python3");

const backend = spawnSync(python, ["-c", "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 69)"]);
const isolation = backend.status === 0 ? ["--no-build-isolation"] : [];
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
// pip builds in the tree, and setuptools copies into build/lib without removing what is gone from the
// source: a module deleted since the last build would ship in the wheel
rmSync(join(root, "build"), { recursive: true, force: true });
const args = ["-m", "pip", "wheel", "--no-deps", "-q", ...isolation, "--wheel-dir", out, root];
const build = spawnSync(python, args, { stdio: ["ignore", "inherit", "inherit"] });
const wheels = readdirSync(out).filter((name) => /^codesieve-.+\.whl$/.test(name));
if (build.error || build.status !== 0 || wheels.length !== 1) {
  console.error(
    `wheel.mjs: '${python} ${args.join(" ")}' failed (${build.error?.message ?? `exit ${build.status}`}). ` +
      "Set PYTHON to a Python 3.10+ with pip (the checkout's .venv is used when it exists).",
  );
  process.exit(1);
}
console.log(`wheel.mjs: ${join(out, wheels[0])}`);
