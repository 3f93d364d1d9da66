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
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * HTTP side of the server: one HAPI {@link RestfulServer} servlet mounted at /fhir/*.
 */
@Configuration
public class FhirServletConfig {

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(
			FhirContext fhirContext,
			ResourceProviderFactory resourceProviders,
			JpaSystemProvider<?, ?> systemProvider,
			ValueSetOperationProvider valueSetOperationProvider,
			IFhirSystemDao<?, ?> systemDao,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			BulkDataExportProvider bulkDataExportProvider) {

		RestfulServer server = new RestfulServer(fhirContext);
		// Resource providers (CRUD, search, conditional operations, $validate per type).
		server.registerProviders(resourceProviders.createProviders());
		// System level: transaction/batch Bundles at POST [base], history, $meta ...
		server.registerProvider(systemProvider);
		server.registerProvider(valueSetOperationProvider);
		// Bulk Data Access $export at system, Patient and Group level, with $export-poll-status.
		server.registerProvider(bulkDataExportProvider);

		pagingProvider.setDefaultPageSize(20);
		pagingProvider.setMaximumPageSize(500);
		server.setPagingProvider(pagingProvider);

		server.setServerConformanceProvider(new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport));
		server.setImplementationDescription("fhir-iastm local test server (HAPI FHIR JPA, H2 in memory)");
		server.setDefaultPrettyPrint(false);

		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(server, "/fhir/*");
		registration.setName("fhirServlet");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
