/** `client.endUsers`: the customers of your product whose usage you meter. */
import type { RequestOptions } from "../http.js";
import type {
  EndUserCreateParams,
  EndUserListParams,
  EndUserListResponse,
  EndUserResponse,
  EndUserUpdateParams,
} from "../types.js";
import { APIResource, checkEmail, defined, path, present } from "./base.js";

export class EndUsers extends APIResource {
  /**
   * Create an end user; `externalId` is your id for them, unique in your tenant.
   * Throws DuplicateCustomerError if the external id is taken, InvalidEmailError for a bad email.
   */
  async create(params: EndUserCreateParams, options?: RequestOptions): Promise<EndUserResponse> {
    checkEmail(params.email);
    const body = present({
      external_id: params.externalId,
      email: params.email,
      name: params.name,
      metadata: params.metadata,
    });
    // retried after an ambiguous failure too: the unique external id prevents a second copy.
    return this.http.request({ method: "POST", path: "/v1/end_users", body }, options);
  }

  /** Fetch one end user by id (`eu_...`). */
  async retrieve(endUserId: string, options?: RequestOptions): Promise<EndUserResponse> {
    return this.http.request({ method: "GET", path: path("/v1/end_users/{}", endUserId) }, options);
  }

  /** Change the given fields only (`email: null` clears the email; `metadata` replaces it). */
  async update(endUserId: string, params: EndUserUpdateParams, options?: RequestOptions): Promise<EndUserResponse> {
    checkEmail(params.email);
    const body = defined({
      external_id: params.externalId,
      email: params.email,
      name: params.name,
      metadata: params.metadata,
    });
    return this.http.request({ method: "PATCH", path: path("/v1/end_users/{}", endUserId), body }, options);
  }

  /** List end users, oldest first; `status` is `"ACTIVE"` or `"DEACTIVATED"`. */
  async list(params: EndUserListParams = {}, options?: RequestOptions): Promise<EndUserListResponse> {
    const query = { status: params.status, limit: params.limit, offset: params.offset };
    return this.http.request({ method: "GET", path: "/v1/end_users", query }, options);
  }

  /** Soft-delete an end user (usage history is kept; idempotent). */
  async deactivate(endUserId: string, options?: RequestOptions): Promise<EndUserResponse> {
    return this.http.request({ method: "POST", path: path("/v1/end_users/{}/deactivate", endUserId) }, options);
  }

  /** Restore a deactivated end user. */
  async reactivate(endUserId: string, options?: RequestOptions): Promise<EndUserResponse> {
    return this.http.request({ method: "POST", path: path("/v1/end_users/{}/reactivate", endUserId) }, options);
  }
}
