package org.fhiriastm.testserver;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;

/**
 * Entry point of the throw-away HAPI FHIR R4 JPA server that fhir-iastm's
 * integration tests run on 127.0.0.1. Everything lives in memory (H2).
 */
@SpringBootApplication(exclude = {QuartzAutoConfiguration.class})
public class LocalFhirServerApplication {

	public static void main(String[] args) {
		SpringApplication.run(LocalFhirServerApplication.class, args);
	}
}
