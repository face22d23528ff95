// Validates xAPI statements with Learning Locker's @learninglocker/xapi-validation.
// Reads a JSON array of statements on stdin; writes a JSON array with, for each
// statement, the list of its problems ([] when it is valid).
const validate = require("@learninglocker/xapi-validation").default;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const statements = JSON.parse(input);
  const problems = statements.map((statement) =>
    validate(statement).map((w) => ({
      path: w.path ? w.path.join(".") : "",
      message: `${w.constructor.name}: ${w.message}`,
    })),
  );
  process.stdout.write(JSON.stringify(problems));
});
