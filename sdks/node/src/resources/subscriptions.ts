/** `client.subscriptions`: which plan an organization (or end user) is on, and since when. */
import type { RequestOptions } from "../http.js";
import type {
  SubscriptionCreateParams,
  SubscriptionListParams,
  SubscriptionListResponse,
  SubscriptionResponse,
  SubscriptionUpdateParams,
} from "../types.js";
import { APIResource, dateValue, defined, path, present } from "./base.js";

export class Subscriptions extends APIResource {
  /**
   * Create a subscription. Not repeated after a timeout or a dropped connection (it could create a second
   * subscription): such a failure throws NetworkError; check with `list` before creating it again.
   */
  async create(params: SubscriptionCreateParams, options?: RequestOptions): Promise<SubscriptionResponse> {
    const body = present({
      organization_id: params.organizationId,
      plan_id: params.planId,
      billing_cycle: params.billingCycle,
      start_date: dateValue(params.startDate),
      end_date: dateValue(params.endDate),
      end_user_id: params.endUserId,
      metadata: params.metadata,
    });
    return this.http.request(
      { method: "POST", path: "/v1/subscriptions", body, retryAmbiguous: false },
      options,
    );
  }

  /** Fetch one subscription by id (`sub_...`). */
  async retrieve(subscriptionId: string, options?: RequestOptions): Promise<SubscriptionResponse> {
    return this.http.request({ method: "GET", path: path("/v1/subscriptions/{}", subscriptionId) }, options);
  }

  /** Change the given fields only (`endDate: null` clears it; `metadata` replaces it). */
  async update(
    subscriptionId: string,
    params: SubscriptionUpdateParams,
    options?: RequestOptions,
  ): Promise<SubscriptionResponse> {
    const body = defined({
      organization_id: params.organizationId,
      plan_id: params.planId,
      billing_cycle: params.billingCycle,
      end_date: dateValue(params.endDate),
      end_user_id: params.endUserId,
      metadata: params.metadata,
    });
    return this.http.request(
      { method: "PATCH", path: path("/v1/subscriptions/{}", subscriptionId), body },
      options,
    );
  }

  /** Cancel a subscription (status CANCELED, `canceledAt` set; idempotent). */
  async cancel(subscriptionId: string, options?: RequestOptions): Promise<SubscriptionResponse> {
    return this.http.request(
      { method: "POST", path: path("/v1/subscriptions/{}/cancel", subscriptionId) },
      options,
    );
  }

  /** List subscriptions, optionally of one organization or status. */
  async list(params: SubscriptionListParams = {}, options?: RequestOptions): Promise<SubscriptionListResponse> {
    const query = {
      organization_id: params.organizationId,
      status: params.status,
      limit: params.limit,
      offset: params.offset,
    };
    return this.http.request({ method: "GET", path: "/v1/subscriptions", query }, options);
  }
}
