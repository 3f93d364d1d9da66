package org.fhiriastm.testserver;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import jakarta.persistence.EntityManagerFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import javax.sql.DataSource;
import java.util.Map;

/**
 * Storage side of the server: HAPI's R4 JPA configuration on top of Spring Boot's
 * DataSource (H2 in memory, see application.yaml).
 *
 * Behaviour fhir-iastm relies on is set explicitly here rather than left to defaults.
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionChannelConfig.class,
	ThreadPoolFactoryConfig.class
})
public class JpaServerConfig {

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();
		// A test that writes then searches must see its own write: never reuse cached search results.
		s.setReuseCachedSearchResultsForMillis(null);
		// Client-assigned ids of any shape (non-numeric ones included); server ids are UUIDs so
		// they can never collide with a client id.
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		s.setAllowExternalReferences(true);
		// Spelled out although they are HAPI's defaults: the push design depends on them.
		s.setAllowInlineMatchUrlReferences(true);
		s.setEnforceReferentialIntegrityOnWrite(true);
		s.setAutoCreatePlaceholderReferenceTargets(false);
		// Fulltext indexing needs Hibernate Search, which is switched off below.
		s.setHibernateSearchIndexFullText(false);
		s.setAdvancedHSearchIndexing(false);
		s.setNonResourceDbHistoryEnabled(false);
		// Bulk Data $export (fhir-iastm bulk-pull is tested against it): every kick-off runs a
		// fresh job (a reused job would miss what a test pushed after an earlier export).
		s.setEnableTaskBulkExportJobExecution(true);
		s.setEnableBulkExportJobReuse(false);
		// Run each step of a batch job as soon as the previous one ends, not at the next
		// once-a-minute maintenance pass (an export would otherwise take minutes).
		s.setJobFastTrackingEnabled(true);
		return s;
	}

	/**
	 * Batch jobs (Bulk Data export) advance at each maintenance pass: every 2 seconds instead
	 * of HAPI's once a minute, so that a test's export finishes in seconds.
	 */
	@Bean
	public static BeanPostProcessor batchMaintenanceEveryTwoSeconds() {
		return new BeanPostProcessor() {
			@Override
			public Object postProcessAfterInitialization(Object bean, String beanName) {
				if (bean instanceof JobMaintenanceServiceImpl maintenance) {
					maintenance.setScheduledJobFrequencyMillis(2000);
				}
				return bean;
			}
		};
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		// No subscription types are enabled: SubscriptionSettings only has to exist as a bean.
		return new SubscriptionSettings();
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			DataSource dataSource,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setDataSource(dataSource);
		Map<String, Object> props = emf.getJpaPropertyMap();
		props.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		props.put("hibernate.hbm2ddl.auto", "update");
		props.put("hibernate.search.enabled", "false");
		// No audit (_AUD) tables: nothing here reads Envers history, and it costs start-up time.
		props.put("hibernate.integration.envers.enabled", "false");
		props.put("hibernate.format_sql", "false");
		props.put("hibernate.show_sql", "false");
		props.put("hibernate.jdbc.batch_size", "20");
		props.put("hibernate.cache.use_query_cache", "false");
		props.put("hibernate.cache.use_second_level_cache", "false");
		return emf;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}
}
