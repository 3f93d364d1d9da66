package org.fhiriastm.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.validation.JpaValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.springframework.beans.factory.InitializingBean;
import org.springframework.context.annotation.Configuration;

/**
 * HAPI's JPA validation chain already holds, in order: the core R4 definitions, the
 * StructureDefinitions/ValueSets/CodeSystems stored in this server's database, the JPA
 * terminology service, snapshot generation (differential-only profiles), in-memory
 * terminology, NPM packages and the common code systems (UCUM, BCP-47, ...).
 *
 * This server has no SNOMED CT / LOINC content and no network, so a last link turns
 * "code system unknown" into a WARNING instead of letting validation fail on it.
 */
@Configuration
public class ValidationChainConfig implements InitializingBean {

	private final JpaValidationSupportChain chain;
	private final FhirContext fhirContext;

	public ValidationChainConfig(JpaValidationSupportChain chain, FhirContext fhirContext) {
		this.chain = chain;
		this.fhirContext = fhirContext;
	}

	@Override
	public void afterPropertiesSet() {
		UnknownCodeSystemWarningValidationSupport unknown = new UnknownCodeSystemWarningValidationSupport(fhirContext);
		unknown.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
		chain.addValidationSupport(unknown);
	}
}
