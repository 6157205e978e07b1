/**
 * What a provider response is, read from its shape (a port of integrations/_detect.py for openai and
 * anthropic). A response is an openai / anthropic Node SDK object, whose shape is the REST body of the API:
 * chat.completions, responses, anthropic messages; streams are their chunk / event objects.
 */
import {
  AnthropicCounts,
  chatUsage,
  get,
  responsesUsage,
  servedTier,
  text,
  type TokenUsage,
} from "./usage.js";

/** One billable call as a response tells it. */
export interface Facts {
  provider: string;
  operation: string;
  model: string | null;
  responseId: string | null;
  usage: TokenUsage | null;
  tier: string | null;
}

/** The facts of an openai object (a response, or a chunk / event of a stream) with the usage already read. */
function openaiFacts(obj: unknown, operation: string, usage: TokenUsage | null): Facts {
  return {
    provider: "openai",
    operation,
    model: text(get(obj, "model")),
    responseId: text(get(obj, "id")),
    usage,
    tier: servedTier(get(obj, "service_tier")),
  };
}

function openaiChat(response: unknown): Facts | null {
  const kind = get(response, "object");
  const usage = get(response, "usage");
  if (
    kind !== "chat.completion" &&
    kind !== "text_completion" &&
    kind !== "list" &&
    (get(usage, "prompt_tokens") === undefined || get(response, "choices") === undefined)
  ) {
    return null;
  }
  if (kind === "list" && get(response, "data") === undefined) return null;
  const operation = kind === "list" ? "embeddings" : kind === "text_completion" ? "completions" : "chat.completions";
  return openaiFacts(response, operation, chatUsage(usage));
}

function openaiResponses(response: unknown): Facts | null {
  if (get(response, "object") !== "response") return null;
  let usage = responsesUsage(get(response, "usage"));
  const output = get(response, "output");
  if (usage !== null && Array.isArray(output)) {
    // Each `web_search_call` output item is one search, billed per call.
    const searches = output.filter((item) => get(item, "type") === "web_search_call").length;
    if (searches) usage = { ...usage, web_searches: searches };
  }
  return openaiFacts(response, "responses", usage);
}

function anthropicMessage(response: unknown): Facts | null {
  if (get(response, "type") !== "message" || get(response, "usage") == null) return null;
  const counts = new AnthropicCounts();
  counts.overwriteFrom(get(response, "usage"));
  return {
    provider: "anthropic",
    operation: "messages",
    model: text(get(response, "model")),
    responseId: text(get(response, "id")),
    usage: counts.usage(),
    tier: counts.tier(),
  };
}

// Tried in order: the first reader that recognises the shape wins.
const READERS = [openaiResponses, anthropicMessage, openaiChat];

/** The facts of `response`, or null when no reader knows its shape. */
export function describe(response: unknown): Facts | null {
  if (typeof response !== "object" || response === null) return null;
  for (const reader of READERS) {
    const facts = reader(response);
    if (facts !== null) return facts;
  }
  return null;
}

/**
 * Accumulates what a stream's items tell about its call. OpenAI's usage is final (the last chat chunk with
 * `stream_options.include_usage`, the Responses API's `response.completed`), so the last seen wins;
 * Anthropic's events split it (input at `message_start`, output at `message_delta`) and are merged.
 */
export class StreamState {
  facts: Facts | null = null;
  complete = false;
  private anthropic: AnthropicCounts | null = null;

  add(item: unknown): void {
    const kind = get(item, "type");
    if (typeof kind === "string" && kind.startsWith("message_")) {
      this.anthropicEvent(kind, item);
      return;
    }
    if (kind === "response.completed" || kind === "response.incomplete" || kind === "response.failed") {
      this.take(describe(get(item, "response")), true);
      return;
    }
    if (get(item, "object") === "chat.completion.chunk") {
      const usage = chatUsage(get(item, "usage"));
      this.take(openaiFacts(item, "chat.completions", usage), usage !== null);
      return;
    }
    if (kind === "response.created" || kind === "response.in_progress") {
      this.take(describe(get(item, "response")), false);
    }
  }

  private take(facts: Facts | null, final: boolean): void {
    if (facts === null) return;
    const previous = this.facts;
    if (previous !== null) {
      facts.model ??= previous.model;
      facts.responseId ??= previous.responseId;
      facts.usage ??= previous.usage;
    }
    this.facts = facts;
    this.complete ||= final;
  }

  private anthropicEvent(kind: string, event: unknown): void {
    this.anthropic ??= new AnthropicCounts();
    if (kind === "message_start") {
      const message = get(event, "message");
      const usage = get(message, "usage");
      if (usage != null) this.anthropic.overwriteFrom(usage);
      this.take(
        {
          provider: "anthropic",
          operation: "messages",
          model: text(get(message, "model")),
          responseId: text(get(message, "id")),
          usage: null,
          tier: null,
        },
        false,
      );
    } else if (kind === "message_delta" && get(event, "usage") != null) {
      this.anthropic.overwriteFrom(get(event, "usage"));
    } else if (kind === "message_stop") {
      this.complete = true;
    }
    if (this.facts !== null) {
      this.facts.usage = this.anthropic.usage();
      this.facts.tier = this.anthropic.tier();
    }
  }
}
