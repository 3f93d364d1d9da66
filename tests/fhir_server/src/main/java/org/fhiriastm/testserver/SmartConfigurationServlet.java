package org.fhiriastm.testserver;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

import java.io.IOException;

/**
 * {@code GET /smart/fhir/.well-known/smart-configuration}: SMART discovery of the protected
 * endpoint, naming the authorization server whose tokens it accepts.
 */
public class SmartConfigurationServlet extends HttpServlet {

	private final String issuer;
	private final String jwksUrl;

	public SmartConfigurationServlet(String issuer, String jwksUrl) {
		this.issuer = issuer;
		this.jwksUrl = jwksUrl;
	}

	@Override
	protected void doGet(HttpServletRequest request, HttpServletResponse response) throws IOException {
		response.setContentType("application/json");
		response.setCharacterEncoding("UTF-8");
		response.getWriter().write("{\"issuer\":\"" + issuer + "\",\"jwks_uri\":\"" + jwksUrl + "\","
				+ "\"token_endpoint\":\"" + issuer + "/token\","
				+ "\"grant_types_supported\":[\"client_credentials\"],"
				+ "\"token_endpoint_auth_methods_supported\":[\"private_key_jwt\"],"
				+ "\"token_endpoint_auth_signing_alg_values_supported\":[\"RS384\",\"ES384\"],"
				+ "\"scopes_supported\":[\"system/*.cruds\",\"system/*.rs\"],"
				+ "\"capabilities\":[\"client-confidential-asymmetric\",\"permission-v2\",\"permission-v1\"]}");
	}
}
