// The Vercel AI SDK (ai + @ai-sdk/openai) with its own telemetry (experimental_telemetry),
// exported by the OpenTelemetry JS SDK's NodeSDK and OTLP/HTTP exporter; its
// OpenAI-compatible provider on Chat Completions against the local stub (stub.py, started
// with STUB_PYTHON). The same three cases as the Python scenarios (common.py):
//
//     node vercel_ai.cjs <ok|model_error|tool_error> <runboard base url|console> <api key>
//
// CommonJS, so NODE_PATH finds the stack's cached node_modules (stacks.py).
"use strict";

const { spawn } = require("node:child_process");
const path = require("node:path");
const readline = require("node:readline");

const { NodeSDK } = require("@opentelemetry/sdk-node");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http");
const { BatchSpanProcessor, ConsoleSpanExporter } = require("@opentelemetry/sdk-trace-base");
const { generateText, stepCountIs, tool } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");
const { z } = require("zod");

const PROMPTS = {
  ok: "What is the weather in Paris?",
  model_error: "What is the weather in Paris? FAIL_MODEL",
  tool_error: "What is the weather in Atlantis?",
};
const MODEL = "gpt-4o-mini-2024-07-18";

const [caseName = "ok", url = "console", key = ""] = process.argv.slice(2);
if (!(caseName in PROMPTS)) {
  console.error(`case must be one of ${Object.keys(PROMPTS).join(", ")}`);
  process.exit(2);
}

function startStub() {
  // The Python stub, so every stack talks to the same model; it prints its base URL.
  const stub = spawn(process.env.STUB_PYTHON || "python3", [path.join(__dirname, "stub.py")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    stub.on("error", reject);
    readline.createInterface({ input: stub.stdout }).once("line", (line) => resolve([stub, line]));
  });
}

function getWeather(city) {
  if (city === "Atlantis") {
    throw new Error(`no weather station in ${city}`);
  }
  return `18 °C and sunny in ${city}`;
}

async function main() {
  const exporter =
    url === "console"
      ? new ConsoleSpanExporter()
      : new OTLPTraceExporter({
          url: `${url}/v1/traces`,
          headers: { Authorization: `Bearer ${key}` },
        });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ "service.name": "weather-vercel-ai" }),
    // The batch processor is what NodeSDK uses when only OTEL_EXPORTER_OTLP_ENDPOINT is
    // set. With SimpleSpanProcessor each span is its own concurrent request, and a root
    // that arrives before the model call that recovered from a tool's error fails the
    // run (a known gap: the verdict is not revisited once the run has failed).
    spanProcessors: [new BatchSpanProcessor(exporter)],
    instrumentations: [],
  });
  sdk.start();
  const [stub, baseURL] = await startStub();
  const openai = createOpenAI({ baseURL, apiKey: "sk-stub" });
  try {
    const result = await generateText({
      model: openai.chat(MODEL),
      prompt: PROMPTS[caseName],
      tools: {
        get_weather: tool({
          description: "The weather now in a city.",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => getWeather(city),
        }),
      },
      stopWhen: stepCountIs(5),
      maxRetries: 0,
      experimental_telemetry: { isEnabled: true, functionId: "weather-agent" },
    });
    console.log(result.text);
  } catch (error) {
    console.log(`failed: ${error}`);
  } finally {
    stub.kill();
    await sdk.shutdown();
  }
}

main();
