package org.fhiriastm.testserver;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * HTTP side of the server: HAPI {@link RestfulServer} servlets on the same DAOs.
 * <ul>
 * <li>{@code /fhir/*}: open, what almost every test uses;</li>
 * <li>{@code /smart/fhir/*}: a SMART Backend Services resource server (see
 * {@link SmartTokenInterceptor}), trusting the authorization server {@code HAPI_SMART_ISSUER}
 * (default {@code http://127.0.0.1:<port + 7>}) and its keys at {@code HAPI_SMART_JWKS_URL}
 * (default {@code <issuer>/jwks}, oidc-provider's), with its discovery document at
 * {@code /smart/fhir/.well-known/smart-configuration};</li>
 * <li>{@code /limited/fhir/*}: open, but refusing a transaction or batch of more than
 * {@code HAPI_MAX_BUNDLE_ENTRIES} entries (default 5) with 413.</li>
 * </ul>
 */
@Configuration
public class FhirServletConfig {

	@Autowired
	private FhirContext fhirContext;
	@Autowired
	private ResourceProviderFactory resourceProviders;
	@Autowired
	private JpaSystemProvider<?, ?> systemProvider;
	@Autowired
	private ValueSetOperationProvider valueSetOperationProvider;
	@Autowired
	private IFhirSystemDao<?, ?> systemDao;
	@Autowired
	private JpaStorageSettings storageSettings;
	@Autowired
	private ISearchParamRegistry searchParamRegistry;
	@Autowired
	private IValidationSupport validationSupport;
	@Autowired
	private DatabaseBackedPagingProvider pagingProvider;

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(BulkDataExportProvider bulkDataExportProvider) {
		RestfulServer server = newServer();
		// Bulk Data Access $export at system, Patient and Group level, with $export-poll-status.
		server.registerProvider(bulkDataExportProvider);
		return register(server, "fhirServlet", "/fhir/*");
	}

	/** The authorization server /smart/fhir trusts: its issuer URL and JWKS URL. */
	public record SmartIssuer(String issuer, String jwksUrl) {
	}

	@Bean
	public SmartIssuer smartIssuer(
			@Value("${HAPI_SMART_ISSUER:}") String issuerSetting,
			@Value("${HAPI_SMART_JWKS_URL:}") String jwksSetting,
			@Value("${server.port:8080}") int port) {
		String issuer = issuerSetting.isBlank() ? "http://127.0.0.1:" + (port + 7) : issuerSetting;
		return new SmartIssuer(issuer, jwksSetting.isBlank() ? issuer + "/jwks" : jwksSetting);
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> smartFhirServlet(SmartIssuer trusted) {
		RestfulServer server = newServer();
		server.registerInterceptor(new SmartTokenInterceptor(trusted.issuer(), trusted.jwksUrl()));
		return register(server, "smartFhirServlet", "/smart/fhir/*");
	}

	@Bean
	public ServletRegistrationBean<SmartConfigurationServlet> smartConfigurationServlet(SmartIssuer trusted) {
		ServletRegistrationBean<SmartConfigurationServlet> registration = new ServletRegistrationBean<>(
				new SmartConfigurationServlet(trusted.issuer(), trusted.jwksUrl()),
				"/smart/fhir/.well-known/smart-configuration");
		registration.setName("smartConfigurationServlet");
		return registration;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> limitedFhirServlet(
			@Value("${HAPI_MAX_BUNDLE_ENTRIES:5}") int maxEntries) {
		RestfulServer server = newServer();
		server.registerInterceptor(new BundleEntryLimitInterceptor(maxEntries));
		return register(server, "limitedFhirServlet", "/limited/fhir/*");
	}

	private RestfulServer newServer() {
		RestfulServer server = new RestfulServer(fhirContext);
		// Resource providers (CRUD, search, conditional operations, $validate per type).
		server.registerProviders(resourceProviders.createProviders());
		// System level: transaction/batch Bundles at POST [base], history, $meta ...
		server.registerProvider(systemProvider);
		server.registerProvider(valueSetOperationProvider);

		pagingProvider.setDefaultPageSize(20);
		pagingProvider.setMaximumPageSize(500);
		server.setPagingProvider(pagingProvider);

		server.setServerConformanceProvider(new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport));
		server.setImplementationDescription("fhir-iastm local test server (HAPI FHIR JPA, H2 in memory)");
		server.setDefaultPrettyPrint(false);
		return server;
	}

	private static ServletRegistrationBean<RestfulServer> register(RestfulServer server, String name,
			String mapping) {
		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(server, mapping);
		registration.setName(name);
		registration.setLoadOnStartup(1);
		return registration;
	}
}
