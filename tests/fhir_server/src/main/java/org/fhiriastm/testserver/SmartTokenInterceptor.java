package org.fhiriastm.testserver;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.AuthenticationException;
import ca.uhn.fhir.rest.server.exceptions.ForbiddenOperationException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.MalformedURLException;
import java.net.URL;
import java.util.List;
import java.util.Set;

/**
 * Makes a HAPI servlet a SMART Backend Services resource server: every request but
 * {@code GET /metadata} needs {@code Authorization: Bearer <JWT access token>} issued by the
 * configured authorization server. The token's signature is checked against that server's JWKS
 * (fetched and cached, refetched for an unknown {@code kid}), then {@code iss}, {@code exp}
 * (60 s leeway), {@code aud} (must name this servlet's base URL, RFC 8707) and the SMART scopes
 * per interaction: read -> r, search -> s, create -> c, update/patch -> u, delete -> d, and for a
 * transaction or batch the same for every entry's method and resource type.
 *
 * No or a bad token -> 401 with {@code WWW-Authenticate: Bearer}; a missing scope -> 403. The
 * token itself is never logged.
 */
@Interceptor
public class SmartTokenInterceptor {

	private static final Logger LOG = LoggerFactory.getLogger(SmartTokenInterceptor.class);

	private final DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();

	public SmartTokenInterceptor(String issuer, String jwksUrl) {
		JWKSource<SecurityContext> keys;
		try {
			keys = JWKSourceBuilder.create(new URL(jwksUrl)).retrying(true).build();
		} catch (MalformedURLException e) {
			throw new IllegalArgumentException("HAPI_SMART_JWKS_URL is not a URL: " + jwksUrl, e);
		}
		processor.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(
				new JOSEObjectType("at+jwt"), JOSEObjectType.JWT, null));
		processor.setJWSKeySelector(new JWSVerificationKeySelector<>(Set.of(
				JWSAlgorithm.RS256, JWSAlgorithm.RS384, JWSAlgorithm.PS256,
				JWSAlgorithm.ES256, JWSAlgorithm.ES384), keys));
		processor.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(
				null, new JWTClaimsSet.Builder().issuer(issuer).build(), Set.of("exp", "aud", "scope")));
		LOG.info("SMART resource server: tokens of {} checked against {}", issuer, jwksUrl);
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void check(RequestDetails request, RestOperationTypeEnum operation) {
		if (operation == RestOperationTypeEnum.METADATA) {
			return; // the CapabilityStatement is public (SMART discovery starts there)
		}
		JWTClaimsSet claims = verified(request);
		SmartScopes scopes = new SmartScopes(scopeClaim(claims));
		for (String[] need : needs(request, operation)) {
			if (!need[1].chars().allMatch(letter -> scopes.allows(need[0], (char) letter))) {
				throw new ForbiddenOperationException("The access token's scopes do not allow "
						+ need[2] + " (needs system/" + need[0] + "." + need[1] + ")");
			}
		}
	}

	private JWTClaimsSet verified(RequestDetails request) {
		String header = request.getHeader("Authorization");
		if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
			throw unauthorized("no bearer token", "invalid_request");
		}
		JWTClaimsSet claims;
		try {
			claims = processor.process(header.substring(7).trim(), null);
		} catch (Exception e) {
			// The reason names the failed check (signature, expiry, issuer ...), never the token.
			throw unauthorized("the access token was refused: " + e.getMessage(), "invalid_token");
		}
		String audience = request.getFhirServerBase();
		List<String> aud = claims.getAudience();
		if (aud == null || !aud.contains(audience)) {
			throw unauthorized("the access token's audience " + aud + " does not name " + audience,
					"invalid_token");
		}
		return claims;
	}

	private static String scopeClaim(JWTClaimsSet claims) {
		Object scope = claims.getClaim("scope");
		return scope instanceof String text ? text : "";
	}

	private static AuthenticationException unauthorized(String why, String error) {
		AuthenticationException e = new AuthenticationException(why);
		e.addResponseHeader("WWW-Authenticate", "Bearer error=\"" + error + "\"");
		return e;
	}

	/** {type, permission letters, interaction} triples the request needs (every letter). */
	private static List<String[]> needs(RequestDetails request, RestOperationTypeEnum operation) {
		String type = request.getResourceName() == null ? "*" : request.getResourceName();
		switch (operation) {
			case READ:
			case VREAD:
			case HISTORY_INSTANCE:
				return List.<String[]>of(new String[] {type, "r", "read " + type});
			case GET_PAGE:
				return List.of(); // a further page of a search whose scopes were checked
			case SEARCH_TYPE:
			case SEARCH_SYSTEM:
			case HISTORY_TYPE:
			case HISTORY_SYSTEM:
				return List.<String[]>of(new String[] {type, "s", "search " + type});
			case CREATE:
				return List.<String[]>of(new String[] {type, "c", "create " + type});
			case UPDATE:
			case PATCH:
				return List.<String[]>of(new String[] {type, "u", "update " + type});
			case DELETE:
				return List.<String[]>of(new String[] {type, "d", "delete " + type});
			case TRANSACTION:
			case BATCH:
				return entryNeeds(request.getResource());
			default:
				// operations ($validate, $export ...) and anything else: read access to the type
				return List.<String[]>of(new String[] {type, "r", operation.getCode() + " on " + type});
		}
	}

	private static List<String[]> entryNeeds(IBaseResource resource) {
		if (!(resource instanceof Bundle bundle)) { // fail closed: nothing to check is no permission
			throw new ForbiddenOperationException("The Bundle's entries could not be checked");
		}
		return bundle.getEntry().stream().map(entry -> {
			Bundle.BundleEntryRequestComponent req = entry.getRequest();
			String url = req.getUrl() == null ? "" : req.getUrl();
			String path = url.split("\\?", 2)[0];
			String entryType = path.split("/", 2)[0];
			boolean instance = path.contains("/");
			String letter;
			switch (req.getMethod() == null ? Bundle.HTTPVerb.NULL : req.getMethod()) {
				case POST -> letter = "c";
				case PUT, PATCH -> letter = "u";
				case DELETE -> letter = "d";
				case GET, HEAD -> letter = instance ? "r" : "s";
				default -> letter = "cruds"; // no method: needs every permission
			}
			return new String[] {entryType.isEmpty() ? "*" : entryType, letter,
					req.getMethod() + " " + url.split("\\?", 2)[0] + " in a Bundle"};
		}).toList();
	}
}
