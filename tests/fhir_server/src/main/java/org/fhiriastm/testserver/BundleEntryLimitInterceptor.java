package org.fhiriastm.testserver;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.PayloadTooLargeException;
import org.hl7.fhir.r4.model.Bundle;

/**
 * Refuses a transaction or batch Bundle with more than {@code max} entries (413, an
 * OperationOutcome naming the limit), as EHR FHIR servers that cap their Bundle size do.
 */
@Interceptor
public class BundleEntryLimitInterceptor {

	private final int max;

	public BundleEntryLimitInterceptor(int max) {
		this.max = max;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void check(RequestDetails request, RestOperationTypeEnum operation) {
		if (operation != RestOperationTypeEnum.TRANSACTION && operation != RestOperationTypeEnum.BATCH) {
			return;
		}
		if (request.getResource() instanceof Bundle bundle && bundle.getEntry().size() > max) {
			throw new PayloadTooLargeException("This server accepts at most " + max
					+ " entries in a Bundle; this one has " + bundle.getEntry().size());
		}
	}
}
