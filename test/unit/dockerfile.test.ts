import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRootUser, renderDockerfile, writeDockerfile } from "../../src/builders/dockerfile.ts";
import { InputError } from "../../src/errors.ts";

const cases: {
  name: string;
  options: Parameters<typeof renderDockerfile>[0];
  expected: string[];
}[] = [
  {
    name: "minimal",
    options: { baseImage: "python:3.12" },
    expected: ["FROM python:3.12", "WORKDIR /app/", "ENV FAIRING_RUNTIME=1", "COPY . /"],
  },
  {
    name: "requirements first as root",
    options: {
      baseImage: "python:3.12",
      installReqsBeforeCopy: true,
      dockerCommand: ["python", "/app/train.py"],
    },
    expected: [
      "FROM python:3.12",
      "WORKDIR /app/",
      "ENV FAIRING_RUNTIME=1",
      'COPY ["app/requirements.txt","/app/requirements.txt"]',
      "RUN pip install --no-cache-dir -r requirements.txt",
      "COPY . /",
      'CMD ["python","/app/train.py"]',
    ],
  },
  {
    name: "requirements first as non-root",
    options: { baseImage: "python:3.12", installReqsBeforeCopy: true, user: "1000:1000" },
    expected: [
      "FROM python:3.12",
      "WORKDIR /app/",
      "ENV FAIRING_RUNTIME=1",
      "USER 1000:1000",
      'COPY ["app/requirements.txt","/app/requirements.txt"]',
      "RUN pip install --no-cache-dir --user -r requirements.txt",
      "COPY . /",
    ],
  },
  {
    name: "requirements after copy",
    options: { baseImage: "python:3.12", installReqsAfterCopy: true },
    expected: [
      "FROM python:3.12",
      "WORKDIR /app/",
      "ENV FAIRING_RUNTIME=1",
      "COPY . /",
      "RUN pip install --no-cache-dir -r requirements.txt",
    ],
  },
  {
    name: "root user by name",
    options: { baseImage: "b", installReqsBeforeCopy: true, user: "root" },
    expected: [
      "FROM b",
      "WORKDIR /app/",
      "ENV FAIRING_RUNTIME=1",
      "USER root",
      'COPY ["app/requirements.txt","/app/requirements.txt"]',
      "RUN pip install --no-cache-dir -r requirements.txt",
      "COPY . /",
    ],
  },
  {
    name: "executable path prefix and env",
    options: {
      baseImage: "b",
      executablePathPrefix: "/opt/venv/bin",
      env: { ZETA: "last", ALPHA: 'say "hi" for $5' },
    },
    expected: [
      "FROM b",
      "WORKDIR /app/",
      "ENV FAIRING_RUNTIME=1",
      'ENV ALPHA="say \\"hi\\" for \\$5"',
      'ENV ZETA="last"',
      'ENV PATH="/opt/venv/bin:$PATH"',
      "COPY . /",
    ],
  },
  {
    name: "spaces and dollar in prefix",
    options: { baseImage: "b", pathPrefix: "/my $app", installReqsBeforeCopy: true },
    expected: [
      "FROM b",
      "WORKDIR /my \\$app/",
      "ENV FAIRING_RUNTIME=1",
      'COPY ["my \\\\$app/requirements.txt","/my \\\\$app/requirements.txt"]',
      "RUN pip install --no-cache-dir -r requirements.txt",
      "COPY . /",
    ],
  },
  {
    name: "CMD in JSON form",
    options: { baseImage: "scratch", dockerCommand: ["sh", "-c", 'echo "a b" \\ $HOME'] },
    expected: [
      "FROM scratch",
      "WORKDIR /app/",
      "ENV FAIRING_RUNTIME=1",
      "COPY . /",
      'CMD ["sh","-c","echo \\"a b\\" \\\\ $HOME"]',
    ],
  },
];

describe("renderDockerfile", () => {
  for (const { name, options, expected } of cases) {
    test(name, () => {
      assert.equal(renderDockerfile(options), expected.join("\n") + "\n");
    });
  }

  test("FAIRING_RUNTIME stays 1", () => {
    const text = renderDockerfile({ baseImage: "b", env: { FAIRING_RUNTIME: "0" } });
    assert.equal(text.match(/FAIRING_RUNTIME/g)?.length, 1);
    assert.match(text, /^ENV FAIRING_RUNTIME=1$/m);
  });

  const rejected: [string, Parameters<typeof renderDockerfile>[0], RegExp][] = [
    [
      "newline in command",
      { baseImage: "b", dockerCommand: ["sh", "a\nRUN x"] },
      /dockerCommand\[1\]/,
    ],
    ["newline in env value", { baseImage: "b", env: { A: "1\n2" } }, /env\.A/],
    ["carriage return in prefix", { baseImage: "b", pathPrefix: "/app\r" }, /pathPrefix/],
    ["newline in base image", { baseImage: "b\nRUN x" }, /baseImage/],
    ["space in base image", { baseImage: "b c" }, /baseImage/],
    ["relative prefix", { baseImage: "b", pathPrefix: "app/" }, /absolute path/],
    ["invalid env name", { baseImage: "b", env: { "A-B": "1" } }, /env name "A-B"/],
    ["newline in user", { baseImage: "b", user: "u\nRUN x" }, /user/],
  ];
  for (const [name, options, message] of rejected) {
    test(`rejects ${name}`, () => {
      assert.throws(() => renderDockerfile(options), InputError);
      assert.throws(() => renderDockerfile(options), message);
    });
  }
});

describe("writeDockerfile", () => {
  test("writes to destination", async () => {
    const destination = join(tmpdir(), `fairing-dockerfile-test-${process.pid}`);
    try {
      const path = await writeDockerfile({ baseImage: "b", destination });
      assert.equal(path, destination);
      assert.equal(await readFile(path, "utf8"), renderDockerfile({ baseImage: "b" }));
    } finally {
      await rm(destination, { force: true });
    }
  });

  test("defaults to a temp file", async () => {
    const path = await writeDockerfile({ baseImage: "b", dockerCommand: ["python"] });
    try {
      assert.ok(path.startsWith(tmpdir()));
      assert.match(await readFile(path, "utf8"), /^CMD \["python"\]$/m);
    } finally {
      await rm(path, { force: true });
    }
  });
});

describe("isRootUser", () => {
  for (const [user, expected] of [
    [undefined, true],
    ["root", true],
    ["0", true],
    ["0:0", true],
    ["root:wheel", true],
    ["1000", false],
    ["worker", false],
    ["rootless", false],
  ] as const) {
    test(`${String(user)} is ${expected ? "root" : "not root"}`, () => {
      assert.equal(isRootUser(user), expected);
    });
  }
});
