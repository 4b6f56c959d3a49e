// Drives a running PeerLLM orchestrator with the official openai client:
// lists models, streams a chat completion and a completion with usage, and
// checks a bad model gets a 404 APIError. Prints one JSON line of results.
// Env: PEERLLM_BASE_URL (e.g. http://127.0.0.1:8080/v1), PEERLLM_API_KEY,
// PEERLLM_MODEL.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.PEERLLM_BASE_URL,
  apiKey: process.env.PEERLLM_API_KEY,
  maxRetries: 0,
});
const model = process.env.PEERLLM_MODEL;

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

const models = [];
for await (const m of client.models.list()) models.push(m);
if (!models.some((m) => m.id === model)) fail(`model ${model} not listed: ${JSON.stringify(models)}`);

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Once upon a time" }],
  max_tokens: 24,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
let chatText = "";
let chatFinish = null;
let chatUsage = null;
for await (const chunk of chat) {
  for (const c of chunk.choices) {
    chatText += c.delta?.content ?? "";
    if (c.finish_reason) chatFinish = c.finish_reason;
  }
  if (chunk.usage) chatUsage = chunk.usage;
}
if (!chatText) fail("empty chat stream");
if (!chatFinish) fail("no finish_reason");
if (!chatUsage || chatUsage.completion_tokens < 1) fail("no usage chunk");

const comp = await client.completions.create({
  model,
  prompt: "Once upon a time",
  max_tokens: 24,
  temperature: 0,
});

let notFound = null;
try {
  await client.completions.create({ model: "no-such-model", prompt: "x" });
} catch (e) {
  notFound = { status: e.status, code: e.code };
}
if (!notFound || notFound.status !== 404) fail(`bad model: ${JSON.stringify(notFound)}`);

console.log(
  JSON.stringify({
    models: models.map((m) => m.id),
    chat: { text: chatText, finish: chatFinish, usage: chatUsage },
    completion: { text: comp.choices[0].text, finish: comp.choices[0].finish_reason, usage: comp.usage },
    notFound,
  }),
);
