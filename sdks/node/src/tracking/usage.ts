/**
 * Token buckets from openai / anthropic usage objects, as billed (a port of integrations/_openai_usage.py
 * and the anthropic counts of integrations/anthropic.py). The buckets never overlap:
 *
 * - `input_tokens`: uncached input only (OpenAI's `prompt_tokens` include cached tokens: subtracted);
 * - `cache_read_tokens`, `cache_write_tokens` (5-minute TTL), `cache_write_1h_tokens`;
 * - `output_tokens`: everything billed as output, reasoning included;
 * - parts, never added again: `reasoning_tokens`, `input_audio_tokens`, ..., `web_searches`.
 */

export interface TokenUsage {
  input_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cache_write_1h_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  input_audio_tokens: number;
  input_image_tokens: number;
  output_audio_tokens: number;
  output_image_tokens: number;
  web_searches: number;
}

const MAIN = ["input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens"] as const;
const PARTS = ["input_audio_tokens", "input_image_tokens", "output_audio_tokens", "output_image_tokens", "web_searches"] as const;

export function totalTokens(usage: TokenUsage): number {
  return (
    usage.input_tokens +
    usage.cache_read_tokens +
    usage.cache_write_tokens +
    usage.cache_write_1h_tokens +
    usage.output_tokens
  );
}

/** Every bucket for the event's metadata (the parts only when non-zero), the layout the Python SDK writes:
 * `bearlumen reprice` reads it back to price the event. */
export function usageMetadata(usage: TokenUsage): Record<string, number> {
  const metadata: Record<string, number> = {};
  for (const name of MAIN) metadata[name] = usage[name];
  for (const name of PARTS) if (usage[name]) metadata[name] = usage[name];
  metadata["total_tokens"] = totalTokens(usage);
  return metadata;
}

export function get(obj: unknown, name: string): unknown {
  return typeof obj === "object" && obj !== null ? (obj as Record<string, unknown>)[name] : undefined;
}

export function count(value: unknown): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : null;
}

export function text(value: unknown): string | null {
  return typeof value === "string" && value ? value : null;
}

const CHAT_FIELDS = ["prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"] as const;
const RESPONSES_FIELDS = ["input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"] as const;

/** Chat / legacy completions / embeddings usage: `prompt_tokens` include cached tokens. */
export function chatUsage(usage: unknown): TokenUsage | null {
  return openaiUsage(usage, CHAT_FIELDS);
}

/** Responses API usage: `input_tokens` include cached tokens. */
export function responsesUsage(usage: unknown): TokenUsage | null {
  return openaiUsage(usage, RESPONSES_FIELDS);
}

function openaiUsage(usage: unknown, fields: readonly [string, string, string, string]): TokenUsage | null {
  if (usage === null || typeof usage !== "object") return null;
  const [inputName, outputName, inputDetailsName, outputDetailsName] = fields;
  const givenCount = count(get(usage, inputName));
  const outputCount = count(get(usage, outputName));
  if (givenCount === null && outputCount === null) return null;
  const given = givenCount ?? 0;
  let output = outputCount ?? 0;
  let cached = 0;
  let cacheWrite = 0;
  let reasoning = 0;
  let inputAudio = 0;
  let inputImage = 0;
  let outputAudio = 0;
  let outputImage = 0;
  const inputDetails = get(usage, inputDetailsName);
  if (inputDetails) {
    cached = count(get(inputDetails, "cached_tokens")) ?? 0;
    cacheWrite = count(get(inputDetails, "cache_write_tokens")) ?? 0;
    inputAudio = count(get(inputDetails, "audio_tokens")) ?? 0;
    inputImage = count(get(inputDetails, "image_tokens")) ?? 0;
  }
  if (!cached) cached = count(get(usage, "prompt_cache_hit_tokens")) ?? 0; // DeepSeek's own field
  const outputDetails = get(usage, outputDetailsName);
  if (outputDetails) {
    reasoning = count(get(outputDetails, "reasoning_tokens")) ?? 0;
    outputAudio = count(get(outputDetails, "audio_tokens")) ?? 0;
    outputImage = count(get(outputDetails, "image_tokens")) ?? 0;
  }
  // Tokens the total counts beyond prompt + completion are reasoning billed as output (Gemini's
  // OpenAI-compatible endpoint, xAI). OpenAI's own totals add up.
  const hidden = (count(get(usage, "total_tokens")) ?? 0) - given - output;
  if (hidden > 0) {
    output += hidden;
    reasoning = Math.max(reasoning, hidden);
  }
  // Clamp nonsense (cache larger than the prompt) rather than produce negative buckets.
  cached = Math.min(cached, given);
  cacheWrite = Math.min(cacheWrite, given - cached);
  return {
    input_tokens: given - cached - cacheWrite,
    cache_read_tokens: cached,
    cache_write_tokens: cacheWrite,
    cache_write_1h_tokens: 0,
    output_tokens: output,
    reasoning_tokens: Math.min(reasoning, output),
    input_audio_tokens: Math.min(inputAudio, given),
    input_image_tokens: Math.min(inputImage, given),
    output_audio_tokens: Math.min(outputAudio, output),
    output_image_tokens: Math.min(outputImage, output),
    web_searches: 0,
  };
}

/** The served tier to price from a response's `service_tier`: null for the standard one. */
export function servedTier(serviceTier: unknown): string | null {
  if (typeof serviceTier !== "string" || ["default", "auto", "standard", ""].includes(serviceTier)) return null;
  return serviceTier;
}

/**
 * Anthropic usage, accumulated: `message_start` gives the input side, `message_delta` cumulative counts
 * (laid over, never added).
 */
export class AnthropicCounts {
  input: number | null = null;
  output: number | null = null;
  cacheRead: number | null = null;
  cacheCreated: number | null = null;
  write5m: number | null = null;
  write1h: number | null = null;
  thinking: number | null = null;
  webSearches: number | null = null;
  serviceTier: string | null = null;
  speed: string | null = null;

  overwriteFrom(usage: unknown): void {
    this.input = count(get(usage, "input_tokens")) ?? this.input;
    this.output = count(get(usage, "output_tokens")) ?? this.output;
    this.cacheRead = count(get(usage, "cache_read_input_tokens")) ?? this.cacheRead;
    this.cacheCreated = count(get(usage, "cache_creation_input_tokens")) ?? this.cacheCreated;
    const breakdown = get(usage, "cache_creation");
    if (breakdown) {
      this.write5m = count(get(breakdown, "ephemeral_5m_input_tokens")) ?? this.write5m;
      this.write1h = count(get(breakdown, "ephemeral_1h_input_tokens")) ?? this.write1h;
    }
    const details = get(usage, "output_tokens_details");
    if (details) this.thinking = count(get(details, "thinking_tokens")) ?? this.thinking;
    const tools = get(usage, "server_tool_use");
    if (tools) this.webSearches = count(get(tools, "web_search_requests")) ?? this.webSearches;
    this.serviceTier = text(get(usage, "service_tier")) ?? this.serviceTier;
    this.speed = text(get(usage, "speed")) ?? this.speed;
  }

  /** The served tier that selects the price: fast mode, batch, or priority (null: standard). */
  tier(): string | null {
    if (this.speed === "fast") return "fast";
    if (this.serviceTier === "batch" || this.serviceTier === "priority") return this.serviceTier;
    return null;
  }

  usage(): TokenUsage | null {
    if (this.input === null && this.output === null) return null;
    const write1h = this.write1h ?? 0;
    // The 5m/1h breakdown says how the writes split; a write it does not account for is a 5-minute write.
    const write5m = Math.max(this.write5m ?? 0, (this.cacheCreated ?? 0) - write1h);
    return {
      input_tokens: this.input ?? 0,
      cache_read_tokens: this.cacheRead ?? 0,
      cache_write_tokens: write5m,
      cache_write_1h_tokens: write1h,
      output_tokens: this.output ?? 0,
      reasoning_tokens: this.thinking ?? 0,
      input_audio_tokens: 0,
      input_image_tokens: 0,
      output_audio_tokens: 0,
      output_image_tokens: 0,
      web_searches: this.webSearches ?? 0,
    };
  }
}
