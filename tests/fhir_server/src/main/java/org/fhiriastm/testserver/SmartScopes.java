package org.fhiriastm.testserver;

import java.util.ArrayList;
import java.util.List;

/**
 * SMART system scopes as granted in an access token's {@code scope} claim: v2
 * ({@code system/Patient.cruds}) and v1 ({@code system/Patient.read}, {@code .write}, {@code .*}),
 * the type possibly {@code *}. Other scopes (patient/, user/, openid ...) grant nothing here.
 */
final class SmartScopes {

	private record Grant(String type, String permissions) {
	}

	private final List<Grant> grants = new ArrayList<>();

	SmartScopes(String scopeClaim) {
		for (String scope : scopeClaim == null ? new String[0] : scopeClaim.trim().split("\\s+")) {
			if (!scope.startsWith("system/")) {
				continue;
			}
			int dot = scope.lastIndexOf('.');
			if (dot < 0) {
				continue;
			}
			String type = scope.substring("system/".length(), dot);
			String permissions = permissions(scope.substring(dot + 1));
			if (!type.isEmpty() && permissions != null) {
				grants.add(new Grant(type, permissions));
			}
		}
	}

	/** The v2 permission letters a scope's suffix grants, or null if it is not a permission. */
	private static String permissions(String suffix) {
		switch (suffix) {
			case "read":
				return "rs";
			case "write":
				return "cud";
			case "*":
				return "cruds";
			default:
				// v2: a subset of c r u d s, in that order (a query part, ?x=y, is not supported)
				return suffix.matches("c?r?u?d?s?") && !suffix.isEmpty() ? suffix : null;
		}
	}

	/** True if one granted scope covers {@code permission} (one letter) on {@code resourceType}. */
	boolean allows(String resourceType, char permission) {
		for (Grant grant : grants) {
			boolean typeMatches = grant.type().equals("*") || grant.type().equals(resourceType);
			if (typeMatches && grant.permissions().indexOf(permission) >= 0) {
				return true;
			}
		}
		return false;
	}
}
